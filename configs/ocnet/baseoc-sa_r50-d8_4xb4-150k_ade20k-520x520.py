# OCNet (Yuan et al.) Table 2 (ADE20K val): + Base-OC (SA).
_base_ = './baseoc-isa_r50-d8_4xb4-150k_ade20k-520x520.py'

model = dict(decode_head=dict(attention='sa'))
