# seed 001 Table 12a / 13: NL head (mmcv NonLocal2d, reduction 4: +0.26M).
_base_ = './_base_/ctx-head_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(decode_head=dict(context_cfg=dict(_delete_=True, type='NonLocal2d', reduction=4, mode='embedded_gaussian')))
