# OCNet (Yuan et al.) Table 12 row "+ NL, 1x": one non-local block (Wang et al., embedded
# Gaussian, C/2 embeddings, 1/sqrt(d) scale) before the last block of res4,
# i.e. on the output of ResNet-50 layer3[4] after its add. W_z is zero-
# initialised so the block starts as the identity (the backbone's frozen BN
# statistics, norm_eval, leave no BN to zero-init inside it).
_base_ = ['./mask-rcnn_r50_fpn_1x_coco.py']

model = dict(backbone=dict(
    type='ContextResNet',
    plugins=[dict(cfg=dict(type='NonLocal2dBlock', reduction=2, mode='embedded_gaussian',
                           use_scale=True, sub_sample=False, zero_init=True),
                  stages=(False, False, True, False), position='after_add', blocks=(-2, ))]))
