# Cao et al. (GCNet) Table 5(a) "+1 GC": one GC block (Eq. 5, r16) right
# before the last residual block of c4.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ContextResNet',
        plugins=[
            dict(
                cfg=dict(type='GlobalContextBlock', ratio=16),
                stages=(False, False, True, False),
                position='after_add',
                blocks=(-2, ))
        ]))
