# Seed 002 Table 5 (b) R-50-FPN + GC.
_base_ = ['./_base_/panoptic-fpn_r50_fpn_600-1024.py']

model = dict(neck=dict(type='SAFPN', attention_cfg=dict(type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1)))
