# Cao et al. (GCNet) Table 12a: SNL head, the simplified non-local block of Eq. 3 (W_k: C -> 1,
# W_v: C x C on 512 channels: +0.26 M).
_base_ = './_base_/ctx-head_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(decode_head=dict(context_cfg=dict(_delete_=True, type='SimplifiedNonLocal2d')))
