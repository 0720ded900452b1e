# Cao et al., Global Context Networks, Table 2 (COCO): Embedded Gaussian at stage c5. One non-local block
# (Eq. 1, Embedded Gaussian, C/2 embedding channels) right before the last residual block of c5
# (after the sum of its second-to-last block, as NLNet), Mask R-CNN R-50 FPN 1x; the
# statistics of the table come from tools/analysis_tools/attention_stats.py on the trained model.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ContextResNet',
        plugins=[
            dict(
                cfg=dict(type='NonLocal2dBlock', reduction=2, mode='embedded_gaussian'),
                stages=(False, False, False, True),
                position='after_add',
                blocks=(-2, ))
        ]))
