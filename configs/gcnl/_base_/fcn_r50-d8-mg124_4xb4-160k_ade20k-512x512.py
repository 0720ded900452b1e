# Woo et al. (GCNL) Table 1 setting: FCN on a dilated ResNet-50 (output stride 8,
# multi-grid (1, 2, 4) in res5), no auxiliary loss and single-scale testing
# ("we did not adopt ... multi-scale testing, auxiliary loss"), SyncBN. The
# paper defers crop / schedule to its supplement: mmseg's standard setting for
# the data set is used. This base is the 'FCN' row.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_160k.py'
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
crop_size = {{_base_.crop_size}}
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(multi_grid=(1, 2, 4)),
    decode_head=dict(num_classes=150),
    auxiliary_head=None)
