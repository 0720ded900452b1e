# OCNet (Yuan et al.) Table 2 (ADE20K val): the 'Dilated ResNet' baseline, one 3x3
# conv (2048 -> 512) before the classifier.
_base_ = './_base_/ocnet_r50-d8_4xb4-150k_ade20k-520x520.py'
