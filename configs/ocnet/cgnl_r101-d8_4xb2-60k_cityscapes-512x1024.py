# OCNet (Yuan et al.) Table 3: CGNL (Yue et al.; mmctx CGNLHead: 3x3 conv -> CGNL block,
# dot-product kernel, 8 groups -> 3x3 conv, concatenated with the input).
_base_ = './_base_/ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='CGNLHead', channels=512, groups=8, kernel='dot',
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
