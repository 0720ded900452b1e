# seed 004 Table 5: + ASP-OC (SA).
_base_ = './aspoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(attention='sa'))
