# Cao et al. (GCNet) Table 5(d) "w/o ratio": the simplified NL transform,
# one C x C 1x1 conv instead of the bottleneck, in every c3-c5 block.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', bottleneck=False),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
