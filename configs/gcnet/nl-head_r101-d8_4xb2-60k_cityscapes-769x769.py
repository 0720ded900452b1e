# Cao et al., Global Context Networks, Table 12a / 13 (NLNet†) and the E-Gaussian row of
# Table 4: NL head, embedded Gaussian, theta / phi / g with C/4 channels
# (512 -> 128: +0.26 M).
_base_ = './_base_/ctx-head_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(decode_head=dict(context_cfg=dict(
    _delete_=True, type='NonLocal2dBlock', reduction=4, mode='embedded_gaussian')))
