# OCNet (Yuan et al.) LIP data (Table 10, human parsing: 19 part labels +
# background, §4.2): crop 473x473, 8 images per GPU; flip, random scale
# [0.5, 2], brightness jitter [-10, 10].
#
# mmseg has no LIP dataset class and needs none: BaseSegDataset with the
# class names below reads the official layout
#   data/LIP/TrainVal_images/{train,val}_images/*.jpg
#   data/LIP/TrainVal_parsing_annotations/{train,val}_segmentations/*.png
# (label = class index, 0 = background). A horizontal flip swaps the
# left/right part labels (14/15 arms, 16/17 legs, 18/19 shoes) through
# RandomFlip's swap_seg_labels. mmseg's test-time augmentation cannot swap
# the class channels of a flipped prediction, so `--tta` here is
# multi-scale only (no flip).
crop_size = (473, 473)
dataset_type = 'BaseSegDataset'
data_root = 'data/LIP/'
metainfo = dict(classes=('Background', 'Hat', 'Hair', 'Glove', 'Sunglasses', 'UpperClothes',
                         'Dress', 'Coat', 'Socks', 'Pants', 'Jumpsuits', 'Scarf', 'Skirt',
                         'Face', 'Left-arm', 'Right-arm', 'Left-leg', 'Right-leg',
                         'Left-shoe', 'Right-shoe'))
left_right = [(14, 15), (16, 17), (18, 19)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5, swap_seg_labels=left_right),
    dict(type='PhotoMetricDistortion', brightness_delta=10, contrast_range=(1.0, 1.0),
         saturation_range=(1.0, 1.0), hue_delta=0),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
img_ratios = [0.75, 1.0, 1.25]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
                     [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type, data_root=data_root, metainfo=metainfo,
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False,
        data_prefix=dict(img_path='TrainVal_images/train_images',
                         seg_map_path='TrainVal_parsing_annotations/train_segmentations'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root, metainfo=metainfo,
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=False,
        data_prefix=dict(img_path='TrainVal_images/val_images',
                         seg_map_path='TrainVal_parsing_annotations/val_segmentations'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='FWIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
