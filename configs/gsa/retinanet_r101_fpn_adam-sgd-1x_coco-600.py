# Lee et al. Table 2 (c) R-101-FPN.
_base_ = ['./_base_/retinanet_r50_fpn_600-1024.py']

model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
