# OCNet (Yuan et al.) Table 10 (LIP val): OCNet (w/ Base-OC), ResNet-101.
_base_ = [
    './_base_/models/baseoc-isa_r101-d8.py', './_base_/datasets/lip_473x473.py',
    'mmseg::_base_/default_runtime.py', './_base_/schedules/lip_100k.py'
]
crop_size = (473, 473)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=20),
    auxiliary_head=dict(num_classes=20))
