# OCNet (Yuan et al.) Table 7 (Cityscapes test): OCNet (w/ Base-OC), ResNet-101.
_base_ = [
    './_base_/models/baseoc-isa_r101-d8.py', './_base_/datasets/cityscapes-trainval_512x1024.py',
    'mmseg::_base_/default_runtime.py', './_base_/schedules/cityscapes-trainval_100k.py'
]
crop_size = (512, 1024)
# OHEM on the decode head's loss (§4.2): pixels kept when their true-class
# probability is below 0.7; mmseg's OHEMPixelSampler counts min_kept per image:
# it raises the threshold until at least min_kept x (images per GPU) = 100k x 2
# pixels of each GPU's batch are kept.
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(sampler=dict(type='OHEMPixelSampler', thresh=0.7, min_kept=100000)))
