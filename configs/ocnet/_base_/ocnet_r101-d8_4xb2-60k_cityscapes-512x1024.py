# OCNet (Yuan et al.) Cityscapes training setting (§4.2): dilated ResNet-101 (output
# stride 8, §3.4), crop 512x1024, batch 8 (4 GPUs x 2), lr 0.01 with poly
# decay (power 0.9, to 0), weight decay 5e-4, 60k iterations on train,
# auxiliary FCN loss on res4 (stage 3) with weight 0.4, SyncBN; augmentation:
# horizontal flip, random scale [0.5, 2], brightness jitter [-10, 10].
# The decode head of this base is the 'Dilated ResNet-101' baseline row of
# Tables 1, 2 and 5: one 3x3 conv (2048 -> 512) and the classifier.
# Evaluation: mIoU, pixel accuracy (aAcc), fwIoU and the boundary F-score at
# 3/5/9/12 px (Table 6).
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
crop_size = (512, 1024)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    # brightness jitter in [-10, 10] only (no contrast / saturation / hue)
    dict(type='PhotoMetricDistortion', brightness_delta=10, contrast_range=(1.0, 1.0),
         saturation_range=(1.0, 1.0), hue_delta=0),
    dict(type='PackSegInputs')
]
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(num_convs=1, concat_input=False),
    auxiliary_head=dict(loss_decode=dict(loss_weight=0.4)))
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.0005))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=60000, by_epoch=False)
]
train_cfg = dict(max_iters=60000, val_interval=6000)
default_hooks = dict(checkpoint=dict(interval=6000))
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(type='FWIoUMetric', iou_metrics=['mIoU'], bf_tolerances=(3, 5, 9, 12))
test_evaluator = val_evaluator
