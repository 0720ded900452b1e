# Cao et al. (GCNet) Table 5(a) "+1 SNL": one simplified non-local block
# (Eq. 3) right before the last residual block of c4.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ContextResNet',
        plugins=[
            dict(
                cfg=dict(type='SimplifiedNonLocal2d'),
                stages=(False, False, True, False),
                position='after_add',
                blocks=(-2, ))
        ]))
