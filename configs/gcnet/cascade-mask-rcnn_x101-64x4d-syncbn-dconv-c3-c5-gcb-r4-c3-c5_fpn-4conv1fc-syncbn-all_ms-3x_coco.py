# Cao et al. (GCNet) Table 7(a) and 7(b), last row: "X101 64x4d + DCN +
# Cascade + 4conv1fc head + GC r4 + multiscale + 3x schd". Cascade Mask
# R-CNN on ResNeXt-101 64x4d with deformable 3x3 convs and GC r4 blocks in
# every c3-c5 bottleneck, SyncBN in the backbone and the heads (FPN, 4conv1fc
# box heads of the three stages, mask head; Table 6(a)'s head setting),
# mmdet's multi-scale 3x setting (shorter side 640-800, 36 epochs).
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_x101-64x4d_fpn_ms-3x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        norm_cfg=norm_cfg,
        norm_eval=False,
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
        plugins=[
            dict(
                cfg=dict(type='GlobalContextBlock', ratio=4),
                stages=(False, True, True, True),
                position='after_conv3')
        ]),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        # one 4conv1fc head per cascade stage, regression targets as
        # mmdet's cascade (box std halved at each stage)
        bbox_head=[
            dict(
                type='Shared4Conv1FCBBoxHead',
                in_channels=256,
                conv_out_channels=256,
                fc_out_channels=1024,
                roi_feat_size=7,
                num_classes=80,
                norm_cfg=norm_cfg,
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(
                    type='CrossEntropyLoss',
                    use_sigmoid=False,
                    loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0,
                               loss_weight=1.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067])
        ],
        mask_head=dict(norm_cfg=norm_cfg)))

# mmdet's ms-3x base evaluates boxes only; Table 7 reports masks too
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
