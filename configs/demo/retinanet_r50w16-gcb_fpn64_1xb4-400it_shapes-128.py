# The `make demo` detector: a CPU-sized RetinaNet whose backbone carries a
# global context (GC) block (Cao et al., Global Context Networks, Fig. 4(d)) after conv3 of every
# bottleneck of ResNet stages c3-c5, as in GCNet's detection experiments
# (Cao et al. (GCNet) Sec. 5.1). It is trained from scratch on the synthetic shapes
# scenes (no weights can be downloaded), sized for a CPU:
# ResNet-50 at a quarter of its width (base_channels=16, stage outputs
# 64/128/256/512), a 64-channel FPN from P2 and a 2-conv 64-channel head,
# 128 px input.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        depth=50,
        base_channels=16,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None,  # trained from scratch: no weights can be downloaded
        plugins=[
            dict(
                # mmctx's GC block (Cao et al. (GCNet) Eq. 5): attention pooling,
                # LN bottleneck C -> C/4 -> C, fusion by addition
                cfg=dict(type='GlobalContextBlock', ratio=4),
                stages=(False, True, True, True),
                position='after_conv3')
        ]),
    neck=dict(
        in_channels=[64, 128, 256, 512],
        out_channels=64,
        start_level=0,  # P2 (stride 4) for the small shapes
        add_extra_convs='on_input',
        num_outs=5),
    bbox_head=dict(
        num_classes=4,
        in_channels=64,
        stacked_convs=2,
        feat_channels=64,
        anchor_generator=dict(
            octave_base_scale=2, strides=[4, 8, 16, 32, 64])))

# iteration-based training: an endless sampler
train_dataloader = dict(batch_size=4, sampler=dict(type='InfiniteSampler'))
max_iters = 400
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False,
         milestones=[int(max_iters * 0.75), int(max_iters * 0.9)], gamma=0.1)
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=4)
# a fixed seed: the demo's AP varies only with CPU thread scheduling
randomness = dict(seed=0)
