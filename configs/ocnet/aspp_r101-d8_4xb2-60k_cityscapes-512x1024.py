# OCNet (Yuan et al.) Table 2 (Cityscapes val): + ASPP (mmseg ASPPHead: image pooling, 1x1 and
# 3x3 rates 12/24/36, 256 channels per branch as in DeepLabv3).
_base_ = './_base_/ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='ASPPHead', channels=256, dilations=(1, 12, 24, 36),
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
