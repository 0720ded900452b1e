# Seed 002 Table 1 (c) R-101; Table 6 Adam + SGD.
_base_ = ['./_base_/faster-rcnn_r50-caffe-c4_600-1024.py']

model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://detectron2/resnet101_caffe')))
