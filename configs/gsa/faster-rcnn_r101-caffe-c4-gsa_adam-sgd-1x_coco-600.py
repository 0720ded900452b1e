# Seed 002 Table 1 (d) R-101 + GC; Table 6 Adam + SGD.
_base_ = ['./_base_/faster-rcnn_r50-caffe-c4_600-1024.py']

model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://detectron2/resnet101_caffe')),
    neck=dict(type='C4SelfAttentionNeck', in_channels=1024, attention_cfg=dict(type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1)))
