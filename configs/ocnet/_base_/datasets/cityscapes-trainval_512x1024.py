# OCNet (Yuan et al.) Table 7 (Cityscapes test): the data of
# ./cityscapes_512x1024.py with train + val as the training set (§4.2).
# Testing is on the test split (multi-scale + flip: tools/test.py CONFIG CKPT
# --tta) and writes the result PNGs for the Cityscapes server
# (CityscapesMetric, format_only: it needs `pip install cityscapesscripts`).
# No validation while training: val is part of the training set (the
# schedule ../schedules/cityscapes-trainval_100k.py has no val loop).
_base_ = './cityscapes_512x1024.py'
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                 pipeline={{_base_.train_pipeline}}),
            dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                 pipeline={{_base_.train_pipeline}})
        ]))
val_dataloader = None
val_evaluator = None
test_dataloader = dict(
    dataset=dict(data_prefix=dict(img_path='leftImg8bit/test', seg_map_path='gtFine/test')))
test_evaluator = dict(
    _delete_=True, type='CityscapesMetric', format_only=True, keep_results=True,
    output_dir='work_dirs/format_results')
