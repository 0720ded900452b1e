# Seed 004 Cityscapes training setting (§4, "Training setting"): dilated
# ResNet-101 (output stride 8), crop 512x1024, batch 8 (4 GPUs x 2), lr 0.01
# with poly (power 0.9) decay, weight decay 5e-4, 60k iterations on train,
# auxiliary FCN loss on res4 with weight 0.4, SyncBN. The decode head of this
# base is the 'Dilated ResNet-101' baseline row: one 3x3 conv (2048 -> 512).
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
crop_size = (512, 1024)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(num_convs=1, concat_input=False),
    auxiliary_head=dict(loss_decode=dict(loss_weight=0.4)))
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.0005))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=60000, by_epoch=False)
]
train_cfg = dict(max_iters=60000, val_interval=6000)
default_hooks = dict(checkpoint=dict(interval=6000))
train_dataloader = dict(batch_size=2)
# mIoU with fwIoU, and the boundary F-score of seed 004 Table 6
val_evaluator = [
    dict(type='FWIoUMetric', iou_metrics=['mIoU']),
    dict(type='BoundaryFScoreMetric', tolerances=(3, 5, 9, 12))
]
test_evaluator = val_evaluator
