# Seed 004 ADE20K training setting (§4): dilated ResNet-50 (Table 2), crop
# 520x520, batch 16 (4 GPUs x 4), lr 0.02 poly, weight decay 1e-4, 150k
# iterations, auxiliary loss 0.4, SyncBN. Baseline head: one 3x3 conv.
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
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_convs=1, concat_input=False, num_classes=150),
    auxiliary_head=dict(num_classes=150, loss_decode=dict(loss_weight=0.4)))
optim_wrapper = dict(optimizer=dict(lr=0.02, weight_decay=0.0001))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=150000, by_epoch=False)
]
train_cfg = dict(max_iters=150000, val_interval=15000)
default_hooks = dict(checkpoint=dict(interval=15000))
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
