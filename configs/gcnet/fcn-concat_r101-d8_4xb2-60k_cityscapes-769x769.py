# Cao et al. (GCNet) Table 12a / 13: baseline† (FCN head, c5 concat, no context).
_base_ = './_base_/ctx-head_r101-d8_4xb2-60k_cityscapes-769x769.py'
