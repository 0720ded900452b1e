# Woo et al. (GCNL) Table 1: FCN + PSP.
_base_ = './_base_/fcn_r50-d8-mg124_4xb4-160k_ade20k-512x512.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='PSPHead', channels=512, pool_scales=(1, 2, 3, 6),
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
