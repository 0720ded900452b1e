# Cao et al. (GCNet) Table 7(a) X101 +GC r16: GC blocks after conv3 of every
# c3-c5 bottleneck.
_base_ = './mask-rcnn_x101-32x4d-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
