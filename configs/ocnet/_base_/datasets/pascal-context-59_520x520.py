# OCNet (Yuan et al.) PASCAL-Context data (59 classes, §4.2): crop 520x520, 4
# images per GPU; flip, random scale [0.5, 2], brightness jitter [-10, 10].
# Multi-scale + flip testing (Table 9): tools/test.py CONFIG CKPT --tta.
_base_ = 'mmseg::_base_/datasets/pascal_context_59.py'
crop_size = (520, 520)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 520), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=10, contrast_range=(1.0, 1.0),
         saturation_range=(1.0, 1.0), hue_delta=0),
    dict(type='PackSegInputs')
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
                     [dict(type='RandomFlip', prob=0., direction='horizontal'),
                      dict(type='RandomFlip', prob=1., direction='horizontal')],
                     [dict(type='LoadAnnotations', reduce_zero_label=True)],
                     [dict(type='PackSegInputs')]])
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(type='FWIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
