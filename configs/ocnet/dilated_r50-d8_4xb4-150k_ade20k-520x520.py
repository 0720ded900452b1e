# seed 004 Table 2: 'Dilated ResNet' baseline (one 3x3 conv head).
_base_ = './_base_/ocnet_r50-d8_4xb4-150k_ade20k-520x520.py'
