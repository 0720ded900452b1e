# OCNet (Yuan et al.) Table 2 (ADE20K val): + Base-OC (ISA); P_h = P_w = 8 (the
# OCP's default), global relation then local relation; variant='official' (the
# authors' released ISA block, which produced the tables).
_base_ = './_base_/ocnet_r50-d8_4xb4-150k_ade20k-520x520.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='BaseOCHead', channels=512, attention='isa', variant='official',
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
