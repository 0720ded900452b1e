# Levi & Ullman (ENL) Table 4 row "+1 NL, BU" (shorter side 600): one original non-local
# block right before the last residual block of res4, as in Table 2.
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(backbone=dict(
    type='ContextResNet',
    plugins=[dict(cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit',
                           similarity='exp', init_std=0.01, impl='fused'),
                  stages=(False, False, True, False), position='after_add', blocks=(-2, ))]))
