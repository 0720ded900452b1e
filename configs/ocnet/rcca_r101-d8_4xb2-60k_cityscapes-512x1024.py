# OCNet (Yuan et al.) Table 3: RCCA (mmseg CCHead: criss-cross attention, recurrence 2).
_base_ = './_base_/ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='CCHead', channels=512, recurrence=2,
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
