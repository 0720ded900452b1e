# OCNet (Yuan et al.) Table 7 (Cityscapes test): the Cityscapes setting of
# ./ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py trained on train + val for
# 100k iterations (§4.2) with OHEM (pixels of the decode head's loss kept
# when their true-class probability is below 0.7; mmseg's OHEMPixelSampler
# counts min_kept per image: it raises the threshold until at least
# min_kept x (images per GPU) = 100k x 2 pixels of each GPU's batch are kept),
# decode head Base-OC (ISA, P_h = P_w = 8, the authors' released ISA block). Testing is on the test split
# with multi-scale + flip (tools/test.py CONFIG CKPT --tta) and writes the
# result PNGs for the Cityscapes server (CityscapesMetric, format_only: it
# needs `pip install cityscapesscripts`). No validation while training: val
# is part of the training set.
_base_ = './ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
model = dict(
    decode_head=dict(
        _delete_=True,
        type='BaseOCHead', channels=512, attention='isa', variant='official',
        in_channels=2048, in_index=3, dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=100000),
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
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
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=100000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=100000, val_interval=100000)
default_hooks = dict(checkpoint=dict(interval=10000))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = dict(
    dataset=dict(data_prefix=dict(img_path='leftImg8bit/test', seg_map_path='gtFine/test')))
test_evaluator = dict(
    _delete_=True, type='CityscapesMetric', format_only=True, keep_results=True,
    output_dir='work_dirs/format_results')
