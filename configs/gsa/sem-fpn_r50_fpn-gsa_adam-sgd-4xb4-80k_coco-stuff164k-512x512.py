# Seed 002 Table 4 (b) R-50-FPN + GC: self-attention between C5 and P5 (Fig. 4), mmctx's SAFPN
# (registered in mmdet's registry, hence the cross-scope type), 1 layer x 4 heads as Tables 1-2.
_base_ = ['./_base_/sem-fpn_r50_fpn_adam-sgd-4xb4-80k_coco-stuff164k-512x512.py']
model = dict(neck=dict(
    type='mmdet.SAFPN',
    attention_cfg=dict(type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1)))
