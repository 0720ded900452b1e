# OCNet (Yuan et al.) Table 12 row "+ ISA, 1x": object context pooling with interlaced
# sparse self-attention (P_h = P_w = 8, global then local relation, C/2 keys
# and values) before the last block of res4 (output of ResNet-50 layer3[4]),
# as a residual block X + OCP(X) whose last rho starts at zero
# (mmctx/models/layers/object_context.py). Its theta / phi BN layers are
# kept in eval mode with the rest of the backbone (norm_eval=True), so they
# act as learned affine layers, like maskrcnn-benchmark's FrozenBN.
_base_ = ['./mask-rcnn_r50_fpn_1x_coco.py']

model = dict(backbone=dict(
    type='ContextResNet',
    plugins=[dict(cfg=dict(type='ResidualObjectContext', attention='isa', groups=(8, 8),
                           order='global_local'),
                  stages=(False, False, True, False), position='after_add', blocks=(-2, ))]))
