# OCNet (Yuan et al.) Cityscapes baseline setting (§4.2) that the Cityscapes
# ablation leaves (Tables 1, 2, 5, 6) change the decode head of: dilated
# ResNet-101 with the 'Dilated ResNet-101' baseline head (./models/ocnet_r101-d8.py),
# the Cityscapes data (./datasets/cityscapes_512x1024.py) and 60k-iteration
# schedule (./schedules/cityscapes_60k.py).
_base_ = [
    './models/ocnet_r101-d8.py', './datasets/cityscapes_512x1024.py',
    'mmseg::_base_/default_runtime.py', './schedules/cityscapes_60k.py'
]
crop_size = (512, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
