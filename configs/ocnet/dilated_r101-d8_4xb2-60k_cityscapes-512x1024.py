# seed 004 Tables 1, 2, 5: 'Dilated ResNet' baseline (one 3x3 conv head).
_base_ = './_base_/ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'
