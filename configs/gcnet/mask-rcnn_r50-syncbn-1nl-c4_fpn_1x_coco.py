# Cao et al., Global Context Networks, Table 5(a) "+1 NL", and the
# Embedded Gaussian / c4 model of Tables 1-3: one non-local block (Eq. 1,
# Embedded Gaussian, C/2 embedding channels) right before the last residual
# block of c4 (after the sum of block 5 of 6, as in NLNet).
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ContextResNet',
        plugins=[
            dict(
                cfg=dict(
                    type='NonLocal2dBlock',
                    reduction=2,
                    mode='embedded_gaussian'),
                stages=(False, False, True, False),
                position='after_add',
                blocks=(-2, ))
        ]))
