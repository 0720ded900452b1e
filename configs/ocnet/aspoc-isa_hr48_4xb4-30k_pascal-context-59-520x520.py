# OCNet (Yuan et al.) Table 9 (PASCAL-Context test): OCNet (w/ ASP-OC), HRNetV2-W48.
_base_ = './baseoc-isa_hr48_4xb4-30k_pascal-context-59-520x520.py'

model = dict(decode_head=dict(type='ASPOCHead', channels=256, dilations=(12, 24, 36)))
