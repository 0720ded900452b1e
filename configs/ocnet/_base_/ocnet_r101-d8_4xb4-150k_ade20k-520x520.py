# OCNet (Yuan et al.) Table 8 (ADE20K val, state of the art): the ADE20K setting of
# ./ocnet_r50-d8_4xb4-150k_ade20k-520x520.py with dilated ResNet-101 and, as
# decode head, Base-OC (ISA, P_h = P_w = 8). Multi-scale + flip testing:
# tools/test.py CONFIG CKPT --tta.
_base_ = './ocnet_r50-d8_4xb4-150k_ade20k-520x520.py'
model = dict(
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(
        _delete_=True,
        type='BaseOCHead', channels=512, attention='isa', variant='official',
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
