# Lee et al. Table 2 closest mmdet equivalent: RetinaNet R-50-FPN, frozen BN,
# shorter side 600 / longer side <= 1024 (TF OD API default).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
model = dict(backbone=dict(norm_cfg=dict(type='BN', requires_grad=False)))
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1024, 600), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1024, 600), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# Optimisation (§4.5): "we trained the model with Adam optimizer first and switched to
# the common SGD optimizer ... Finally, we finetuned the models by SGD optimizer". The paper
# (TF OD API) gives neither the switch point nor the learning rates. Ours, on mmdet's 1x
# schedule (12 epochs of 16 images): Adam (lr 1e-4, after mmdet's 500-iteration warm-up) for
# epochs 1-8, where the 1x schedule would first decay; then SGD with mmdet's RetinaNet's own setting
# (lr 0.01, momentum 0.9, wd 1e-4) for epochs 9-12, x0.1 at epoch 11, so every decay
# acts on SGD (AdamToSGDHook carries the schedulers over to SGD).
sgd_optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001)
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='Adam', lr=0.0001, weight_decay=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[11], gamma=0.1)
]
custom_hooks = [
    dict(type='AdamToSGDHook', switch_epoch=8,
         sgd_cfg=sgd_optimizer)
]
