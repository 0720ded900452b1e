# Levi & Ullman (ENL) Table 2 row "+1NL, BU" (no position, not efficient): the variant of
# Wang et al. [51], one non-local block on the bottom-up stream, right before
# the last residual block of res4 (ResNet-50 layer3[4]'s output, after its add).
# The NL is the paper's original one (Eq. 2, embedded Gaussian normalised by
# Z), as on the TD stream: N(0, 0.01) init, no BN inside (§4).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-800.py']

model = dict(backbone=dict(
    type='ContextResNet',
    plugins=[dict(cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit',
                           similarity='exp', init_std=0.01, impl='fused'),
                  stages=(False, False, True, False), position='after_add', blocks=(-2, ))]))
