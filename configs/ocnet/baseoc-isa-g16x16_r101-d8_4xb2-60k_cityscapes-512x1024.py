# OCNet (Yuan et al.) Table 1: Base-OC (ISA, global+local) with P_h=16, P_w=16.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(ocp_cfg=dict(groups=(16, 16))))
