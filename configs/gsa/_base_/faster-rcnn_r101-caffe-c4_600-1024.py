# The R-50 C4 setting with ResNet-101: the backbone (c2-c4) and the RoI head's shared C5
# stage (mmdet's ResLayer) both take their weights from the R-101 checkpoint (mmdet's C4 base
# gives the shared head its own ResNet-50 init_cfg, which an R-101 row must replace).
_base_ = ['./faster-rcnn_r50-caffe-c4_600-1024.py']

pretrained = 'open-mmlab://detectron2/resnet101_caffe'
model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    roi_head=dict(shared_head=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained))))
