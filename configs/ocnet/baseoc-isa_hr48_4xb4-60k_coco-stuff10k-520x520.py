# OCNet (Yuan et al.) Table 11 (COCO-Stuff-10k test): OCNet (w/ Base-OC), HRNetV2-W48.
_base_ = [
    './_base_/models/baseoc-isa_hr48.py', './_base_/datasets/coco-stuff10k_520x520.py',
    'mmseg::_base_/default_runtime.py', './_base_/schedules/coco-stuff10k_60k.py'
]
crop_size = (520, 520)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=171),
    auxiliary_head=dict(num_classes=171))
