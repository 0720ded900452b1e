# Woo et al. (GCNL) Table 1: FCN.
_base_ = './_base_/fcn_r50-d8-mg124_4xb4-80k_pascal-context-480x480.py'
