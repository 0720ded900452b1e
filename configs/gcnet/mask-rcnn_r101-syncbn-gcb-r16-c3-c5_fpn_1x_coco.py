# Cao et al. (GCNet) Table 7(a) R101 +GC r16: GC blocks after conv3 of every
# c3-c5 bottleneck.
_base_ = './mask-rcnn_r101-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
