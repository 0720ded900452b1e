# Woo et al. (GCNL) Table 1: FCN + ACFModule (ACFNet, Zhang et al. ICCV 2019).
_base_ = './_base_/fcn_r50-d8-mg124_4xb4-80k_pascal-context-480x480.py'

model = dict(
    decode_head=dict(
        _delete_=True,
        type='ACFHead', channels=512, coarse_loss_weight=0.4,
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=60,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
