# Cao et al. (GCNet) Table 5(d) "r16+ReLU": bottleneck with ReLU but no LN
# in every c3-c5 block.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16, norm=None),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
