# Cao et al. (GCNet) Table 5(c) stage c5: GC r16 after conv3 of the 3 c5
# bottlenecks only.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16),
            stages=(False, False, False, True),
            position='after_conv3')
    ]))
