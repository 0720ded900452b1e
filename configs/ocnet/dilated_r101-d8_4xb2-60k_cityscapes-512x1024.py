# OCNet (Yuan et al.) Tables 1, 2, 5 (Cityscapes val): the 'Dilated ResNet' baseline, one 3x3
# conv (2048 -> 512) before the classifier.
_base_ = './_base_/ocnet_r101-d8_4xb2-60k_cityscapes-512x1024.py'
