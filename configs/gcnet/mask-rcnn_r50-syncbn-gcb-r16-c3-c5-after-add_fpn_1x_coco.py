# Cao et al. (GCNet) Table 5(b) "afterAdd": GC r16 on the output of every
# c3-c5 residual block (after the sum and its ReLU, where NLNet puts its
# block) instead of after the last 1x1 conv.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ContextResNet',
        plugins=[
            dict(
                cfg=dict(type='GlobalContextBlock', ratio=16),
                stages=(False, True, True, True),
                position='after_add')
        ]))
