# Cao et al. (GCNet) Table 6(a) "syncBN / 4conv1fc syncBN" +GC r16: SyncBN
# backbone and heads, GC blocks after conv3 of every c3-c5 bottleneck.
_base_ = './mask-rcnn_r50-syncbn_fpn-4conv1fc-syncbn-all_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
