# Cao et al. (GCNet) Table 5(e) ratio 8: GC blocks with C/8 hidden channels
# after conv3 of every c3-c5 bottleneck.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=8),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
