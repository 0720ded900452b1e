# OCNet (Yuan et al.) §4.3, Table 1 ablation "only global relation" (78.9 mIoU,
# Cityscapes val): Base-OC with the global relation of ISA alone, P_h = P_w = 8.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(ocp_cfg=dict(order='global')))
