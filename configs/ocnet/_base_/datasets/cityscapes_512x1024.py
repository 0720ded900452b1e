# OCNet (Yuan et al.) Cityscapes data (§4.2): crop 512x1024, 2 images per GPU;
# augmentation: horizontal flip, random scale [0.5, 2], brightness jitter
# [-10, 10]. Evaluation: mIoU, pixel accuracy (aAcc), fwIoU and the boundary
# F-score at 3/5/9/12 px (Table 6).
_base_ = 'mmseg::_base_/datasets/cityscapes.py'
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
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(type='FWIoUMetric', iou_metrics=['mIoU'], bf_tolerances=(3, 5, 9, 12))
test_evaluator = val_evaluator
