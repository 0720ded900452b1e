# OCNet (Yuan et al.) ADE20K baseline setting (§4.2) that the ADE20K ablation
# leaves (Table 2) change the decode head of: dilated ResNet-50 with the
# 'Dilated ResNet-50' baseline head (./models/ocnet_r50-d8.py), the ADE20K data
# (./datasets/ade20k_520x520.py) and 150k-iteration schedule
# (./schedules/ade20k_150k.py).
_base_ = [
    './models/ocnet_r50-d8.py', './datasets/ade20k_520x520.py',
    'mmseg::_base_/default_runtime.py', './schedules/ade20k_150k.py'
]
crop_size = (520, 520)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
