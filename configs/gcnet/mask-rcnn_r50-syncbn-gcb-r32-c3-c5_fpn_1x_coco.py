# Cao et al. (GCNet) Table 5(e) ratio 32: GC blocks with C/32 hidden channels
# after conv3 of every c3-c5 bottleneck.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=32),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
