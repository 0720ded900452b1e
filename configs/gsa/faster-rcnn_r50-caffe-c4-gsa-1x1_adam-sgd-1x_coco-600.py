# Seed 002 Table 3 layer x head = 1 x 1.
_base_ = ['./_base_/faster-rcnn_r50-caffe-c4_600-1024.py']

model = dict(neck=dict(type='C4SelfAttentionNeck', in_channels=1024, attention_cfg=dict(type='BottleneckSelfAttention', reduction=4, num_heads=1, num_layers=1)))
