# Cao et al. (GCNet) Table 6(b) "syncBN / 2fc, 2x" +GC r16: GC blocks after
# conv3 of every c3-c5 bottleneck, 24 epochs.
_base_ = './mask-rcnn_r50-syncbn_fpn_2x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
