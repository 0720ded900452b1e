# OCNet (Yuan et al.) Table 1: Base-OC (ISA, local relation first), P_h = P_w = 8.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(ocp_cfg=dict(order='local_global')))
