# Woo et al. (GCNL) Table 1: FCN.
_base_ = './_base_/fcn_r50-d8-mg124_4xb4-160k_ade20k-512x512.py'
