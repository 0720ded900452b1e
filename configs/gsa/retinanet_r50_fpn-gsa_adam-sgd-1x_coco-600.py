# Seed 002 Table 2 (b) R-50-FPN + GC (self-attention between C5 and P5, Fig. 4); Table 6 Adam + SGD.
_base_ = ['./_base_/retinanet_r50_fpn_600-1024.py']

model = dict(neck=dict(type='SAFPN', attention_cfg=dict(type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1)))
