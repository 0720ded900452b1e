# The context benchmark's segmentation setting, merged over a paper config by
# tools/analysis_tools/context_benchmark.py (the paper's head and its settings
# stay; data, backbone and sizes shrink to a CPU):
# - data: the "key" scenes (tools/dataset_converters/make_context_shapes.py),
#   96x96, background + 3 classes decided by a key more than 36 px from
#   every object pixel;
# - backbone: ResNetV1c-18 (mmseg's), base width 16, its stem and first stage
#   only (output stride 4, 16 channels, a 24 x 24 map), trained from scratch;
#   its receptive field with the FCN head (radius 31 px, measured by
#   mmctx.analysis.context_benchmark.receptive_radius) stops short of the key
#   from every object pixel;
# - head: the paper's head at 32 channels (in_channels 16, in_index 0), BN, no
#   auxiliary head (there is no later stage to put it on);
# - schedule: AdamW lr 1e-2 (weight decay 1e-4), linear warm-up over the first
#   10 % of the iterations, cosine to 0, batch 8; context_benchmark.py sets the
#   iterations. The same for every row, fixed on the floor and Base-OC (SA)
#   before any other row was run.
_base_ = ['./schedule_key.py']
data_root = 'data/context_key'
crop_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)
metainfo = dict(classes=('background', 'red', 'green', 'blue'),
                palette=[[0, 0, 0], [230, 30, 30], [30, 200, 30], [40, 60, 230]])
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True, type='ResNetV1c', depth=18, base_channels=16, stem_channels=16,
        num_stages=1, strides=(1, ), dilations=(1, ), out_indices=(0, ),
        norm_cfg=norm_cfg, norm_eval=False, style='pytorch', contract_dilation=True),
    # init_cfg=None: the classifier keeps PyTorch's default init instead of
    # mmseg's N(0, 0.01), with which no context head learnt the key within the
    # budget (README of the benchmark: the "mmseg init" row)
    decode_head=dict(in_channels=16, in_index=0, channels=32, num_classes=4,
                     norm_cfg=norm_cfg, init_cfg=None),
    auxiliary_head=None)
train_dataloader = dict(
    _delete_=True, batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
                 img_suffix='.png', seg_map_suffix='.png',
                 data_prefix=dict(img_path='images/train', seg_map_path='semantic/train'),
                 pipeline=pipeline))
val_dataloader = dict(
    _delete_=True, batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
                 img_suffix='.png', seg_map_suffix='.png',
                 data_prefix=dict(img_path='images/val', seg_map_path='semantic/val'),
                 pipeline=pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-2, weight_decay=1e-4))
