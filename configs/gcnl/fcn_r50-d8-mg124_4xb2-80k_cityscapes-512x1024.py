# Woo et al. (GCNL) Table 1: FCN.
_base_ = './_base_/fcn_r50-d8-mg124_4xb2-80k_cityscapes-512x1024.py'
