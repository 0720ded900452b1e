# OCNet (Yuan et al.) §4.3, Table 1 ablation "only local relation" (77.2 mIoU,
# Cityscapes val): Base-OC with the local relation of ISA alone, P_h = P_w = 8.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(ocp_cfg=dict(order='local')))
