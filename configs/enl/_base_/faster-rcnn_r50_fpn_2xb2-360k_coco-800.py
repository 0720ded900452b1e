# Levi & Ullman (ENL) §4 training recipe on mmdet's Faster R-CNN R-50-FPN (Detectron
# baseline [15]): COCO train2017 / val2017, shorter side 800, 360k iterations,
# SGD lr 0.005 (momentum 0.9, wd 1e-4), lr x0.1 at 240k and 320k, frozen BN
# (affine only). lr 0.005 is Detectron's linear-scaling value for 4 images
# per iteration: run with 2 GPUs x 2 images (tools/dist_train.sh CONFIG 2).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=360000,
    val_interval=40000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=360000, by_epoch=False,
         milestones=[240000, 320000], gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=0.0001))
train_dataloader = dict(batch_size=2, sampler=dict(type='InfiniteSampler'))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=40000))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=4)
