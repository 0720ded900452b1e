# The context benchmark's detection setting, merged over a paper RetinaNet
# config by tools/analysis_tools/context_benchmark.py (the paper's detector,
# neck type and context module stay; data, backbone and sizes shrink to a CPU):
# - data: the "key" scenes (tools/dataset_converters/make_context_shapes.py),
#   96x96, 3 classes decided by a key more than 36 px from every object pixel,
#   the COCO boxes of the generator;
# - backbone: mmdet's ResNet-50 layout (Bottleneck, so that the papers' blocks
#   fit where they plug in), base width 16, its stem and first stage only (C2:
#   output stride 4, 64 channels, a 24 x 24 map), trained from scratch;
# - neck: the paper's FPN on C2 alone, one output level, P2 (32 channels, no
#   extra levels). Every FPN level sees the top backbone stage through the
#   top-down path, so the number of stages, not the level the head reads,
#   bounds what the floor sees: one stage is what keeps the key out of reach.
#   A neck that is a chain ([FPN, BFP-like]) gets these settings on its FPN;
#   its row sets the sizes of the rest (mmctx.analysis.context_benchmark);
# - head: RetinaNet's, 1 stacked conv of 32 channels, anchors 16 / 20 / 25 px
#   (octave base scale 4 at stride 4, 3 scales per octave, ratio 1: the discs
#   are 14-30 px). The classification logits' receptive field stops short of
#   the key from every object pixel: radius 33 px on the logits upsampled to
#   the image, as for segmentation (mmctx.analysis.context_benchmark.
#   receptive_radius), measured BEFORE init_weights: mmdet zero-initialises
#   the last BN of each residual branch, which hides the branches from a
#   gradient measured after it (21 px then);
# - schedule: AdamW lr 1e-2 (weight decay 1e-4, the segmentation fragment's),
#   gradient clipping at norm 10, linear warm-up over the first 10 % of the
#   iterations, cosine to 0, batch 8; context_benchmark.py sets the
#   iterations (1200 for detection rows, Row.iters). The same for every row,
#   fixed by a pilot on the floor, its oracle ceiling and two modules before
#   the rows were run (at lr 2e-3 and 600 iterations both modules stayed at
#   chance).
_base_ = ['./schedule_key.py']
data_root = 'data/context_key'
img_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)
metainfo = dict(classes=('red', 'green', 'blue'),
                palette=[(230, 30, 30), (30, 200, 30), (40, 60, 230)])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_size, keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
model = dict(
    backbone=dict(
        _delete_=True, type='ResNet', depth=50, base_channels=16, stem_channels=16,
        num_stages=1, strides=(1, ), dilations=(1, ), out_indices=(0, ), frozen_stages=-1,
        norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None),
    neck=dict(in_channels=[64], out_channels=32, start_level=0, add_extra_convs=False,
              num_outs=1),
    bbox_head=dict(num_classes=3, in_channels=32, feat_channels=32, stacked_convs=1,
                   anchor_generator=dict(octave_base_scale=4, scales_per_octave=3,
                                         ratios=[1.0], strides=[4])),
    test_cfg=dict(nms_pre=1000, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=50))
train_dataloader = dict(
    _delete_=True, batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='images/train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=0), pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True, batch_size=8, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='images/val/'), test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
# compose_config points ann_file at the row's data (the benchmark scores with
# det_scores, not with this metric)
val_evaluator = dict(_delete_=True, type='CocoMetric',
                     ann_file=data_root + '/annotations/instances_val.json', metric='bbox')
test_evaluator = val_evaluator
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
# the AdamW above replaces a paper's optimiser switch too (Lee et al.'s
# configs swap Adam for SGD at epoch 8 with a hook)
custom_hooks = []
val_cfg = dict(_delete_=True, type='ValLoop')
test_cfg = dict(_delete_=True, type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=16)
