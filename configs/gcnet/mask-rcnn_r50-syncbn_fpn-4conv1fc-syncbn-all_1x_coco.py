# Cao et al. (GCNet) Table 6(a) "syncBN / 4conv1fc syncBN" baseline: SyncBN in
# the backbone and in the heads (FPN, a 4conv1fc box head, the mask head),
# as GCNet's own "sbn" configs; the RPN head has no norm.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
