# Cao et al. (GCNet) Table 5(d) "r16 (ratio 16)": a two-layer linear
# bottleneck (no LN, no ReLU) in every c3-c5 block.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16, norm=None, act=None),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
