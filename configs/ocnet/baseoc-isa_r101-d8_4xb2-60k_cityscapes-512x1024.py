# OCNet (Yuan et al.) Tables 1, 2, 5 (Cityscapes val): + Base-OC (ISA); P_h = P_w = 8
# (the OCP's default), global relation then local relation.
# variant='official': the ISA block of the authors' released code, which produced
# the tables (rho conv-BN-ReLU, values of C channels, symmetric padding); every
# OCNet segmentation config inherits it (see mmctx/models/decode_heads/base_oc_head.py).
_base_ = './_base_/ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='BaseOCHead', channels=512, attention='isa', variant='official',
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
