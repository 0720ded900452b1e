# Cao et al. (GCNet) Table 6(a) "fixBN / 2fc (w/o BN)" +GC r4: GC blocks after
# conv3 of every c3-c5 bottleneck of a backbone with frozen BN statistics.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=4),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
