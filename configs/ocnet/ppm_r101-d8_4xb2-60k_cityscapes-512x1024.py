# OCNet (Yuan et al.) Table 2 (Cityscapes val): + PPM (mmseg PSPHead, bins 1/2/3/6, 512 channels).
_base_ = './_base_/ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='PSPHead', channels=512, pool_scales=(1, 2, 3, 6),
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
