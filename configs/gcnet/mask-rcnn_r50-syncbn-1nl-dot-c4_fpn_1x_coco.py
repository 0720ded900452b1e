# Cao et al., Global Context Networks, Table 1 (COCO) and 3: the Dot product instantiation. One non-local block
# (Eq. 1, Dot product, C/2 embedding channels) right before the last residual block of c4
# (after the sum of its second-to-last block, as NLNet), Mask R-CNN R-50 FPN 1x; the
# statistics of the table come from tools/analysis_tools/attention_stats.py on the trained model.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(
        type='ContextResNet',
        plugins=[
            dict(
                cfg=dict(type='NonLocal2dBlock', reduction=2, mode='dot_product'),
                stages=(False, False, True, False),
                position='after_add',
                blocks=(-2, ))
        ]))
