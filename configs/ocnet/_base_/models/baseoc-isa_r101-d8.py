# OCNet (Yuan et al.): dilated ResNet-101 (output stride 8, §3.4) with the
# decode head Base-OC (ISA, P_h = P_w = 8; variant='official': the authors'
# released ISA block, which produced the tables), auxiliary FCN loss on res4
# with weight 0.4, SyncBN. num_classes=19 (Cityscapes); a leaf on another data
# set sets its classes and crop (see ./ocnet_r101-d8.py).
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
model = dict(
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(
        _delete_=True,
        type='BaseOCHead', channels=512, attention='isa', variant='official',
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(loss_decode=dict(loss_weight=0.4)))
