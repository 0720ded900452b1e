# Seed 002 Table 2 (d) R-101-FPN + GC.
_base_ = ['./_base_/retinanet_r50_fpn_600-1024.py']

model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')),
    neck=dict(type='SAFPN', attention_cfg=dict(type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1)))
