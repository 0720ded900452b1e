# Woo et al. (GCNL) Table 1: FCN + EncModule.
_base_ = './_base_/fcn_r50-d8-mg124_4xb2-80k_cityscapes-512x1024.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='EncHead', in_channels=[512, 1024, 2048], in_index=(1, 2, 3), channels=512,
        num_codes=32, use_se_loss=True, add_lateral=False,
        loss_se_decode=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=0.2),
        dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
