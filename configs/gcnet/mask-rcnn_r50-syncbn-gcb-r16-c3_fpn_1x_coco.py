# Cao et al. (GCNet) Table 5(c) stage c3: GC r16 after conv3 of the 4 c3
# bottlenecks only.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16),
            stages=(False, True, False, False),
            position='after_conv3')
    ]))
