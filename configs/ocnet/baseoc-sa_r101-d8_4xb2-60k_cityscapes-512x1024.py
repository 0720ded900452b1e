# OCNet (Yuan et al.) Tables 1, 2, 5 (Cityscapes val): + Base-OC (SA).
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(attention='sa'))
