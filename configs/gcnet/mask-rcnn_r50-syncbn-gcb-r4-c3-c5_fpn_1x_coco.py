# Cao et al. (GCNet) Table 5(e) ratio 4, Table 6(a) syncBN / 2fc +GC r4,
# Table 7(a) R50 +GC r4: GC blocks with C/4 hidden channels after conv3 of
# every c3-c5 bottleneck.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=4),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
