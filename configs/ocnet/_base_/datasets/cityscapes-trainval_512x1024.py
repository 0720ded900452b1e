# OCNet (Yuan et al.) Table 7 (Cityscapes test): the data of
# ./cityscapes_512x1024.py (crop, augmentation) with train + val as the
# training set (§4.2).
# Testing is on the test split (multi-scale + flip: tools/test.py CONFIG CKPT
# --tta) and writes the result PNGs for the Cityscapes server
# (CityscapesMetric, format_only: it needs `pip install cityscapesscripts`).
# No validation while training: val is part of the training set (the
# schedule ../schedules/cityscapes-trainval_100k.py has no val loop).
_base_ = 'mmseg::_base_/datasets/cityscapes.py'
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
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
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                 pipeline=train_pipeline),
            dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                 pipeline=train_pipeline)
        ]))
val_dataloader = None
val_evaluator = None
test_dataloader = dict(
    dataset=dict(data_prefix=dict(img_path='leftImg8bit/test', seg_map_path='gtFine/test')))
test_evaluator = dict(
    _delete_=True, type='CityscapesMetric', format_only=True, keep_results=True,
    output_dir='work_dirs/format_results')
