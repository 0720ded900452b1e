# OCNet (Yuan et al.) Table 2 (ADE20K val): + PPM (mmseg PSPHead, bins 1/2/3/6, 512 channels).
_base_ = './_base_/ocnet_r50-d8_4xb4-150k_ade20k-520x520.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='PSPHead', channels=512, pool_scales=(1, 2, 3, 6),
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
