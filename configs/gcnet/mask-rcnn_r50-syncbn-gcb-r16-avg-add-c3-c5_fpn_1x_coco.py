# Cao et al. (GCNet) Table 5(f) avg+add: average pooling, r16 bottleneck,
# broadcast addition, in every c3-c5 block.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(
                type='GlobalContextBlock',
                ratio=16,
                pooling='avg',
                fusion='add'),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
