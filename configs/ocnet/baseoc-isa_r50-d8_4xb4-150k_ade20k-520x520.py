# OCNet (Yuan et al.) Table 2 (ADE20K val): + Base-OC (ISA); P_h = P_w = 8 (the
# OCP's default), global relation then local relation; variant='official' (the
# authors' released ISA block, which produced the tables).
_base_ = [
    './_base_/models/ocnet_r50-d8.py', './_base_/datasets/ade20k_520x520.py',
    'mmseg::_base_/default_runtime.py', './_base_/schedules/ade20k_150k.py'
]
crop_size = (520, 520)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(
        _delete_=True,
        type='BaseOCHead', channels=512, attention='isa', variant='official',
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(num_classes=150))
