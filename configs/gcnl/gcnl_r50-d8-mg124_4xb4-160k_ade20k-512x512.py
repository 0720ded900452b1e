# Woo et al. (GCNL) Table 1: FCN + Ours (GCNL).
_base_ = './_base_/fcn_r50-d8-mg124_4xb4-160k_ade20k-512x512.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='GCNLHead', channels=512, num_heads=8, reduction=2, attn_drop=0.1,
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=150,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
