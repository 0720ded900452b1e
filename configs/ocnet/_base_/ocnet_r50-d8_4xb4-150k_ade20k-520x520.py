# OCNet (Yuan et al.) ADE20K training setting (§4.2): dilated ResNet-50 (Table 2),
# crop 520x520, batch 16 (4 GPUs x 4), lr 0.02 with poly decay (power 0.9, to
# 0), weight decay 1e-4, 150k iterations, auxiliary FCN loss 0.4 on res4,
# SyncBN; flip, random scale [0.5, 2], brightness jitter [-10, 10].
# Decode head: the 'Dilated ResNet-50' baseline (one 3x3 conv 2048 -> 512).
# Multi-scale + flip testing (Table 8 rows): tools/test.py ... --tta.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_160k.py'
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
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
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 520), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
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
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_convs=1, concat_input=False, num_classes=150),
    auxiliary_head=dict(num_classes=150, loss_decode=dict(loss_weight=0.4)))
optim_wrapper = dict(optimizer=dict(lr=0.02, weight_decay=0.0001))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=150000, by_epoch=False)
]
train_cfg = dict(max_iters=150000, val_interval=15000)
default_hooks = dict(checkpoint=dict(interval=15000))
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='FWIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
