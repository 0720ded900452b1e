# OCNet (Yuan et al.) Table 10 (LIP val): OCNet (w/ ASP-OC), HRNetV2-W48.
_base_ = './baseoc-isa_hr48_4xb8-100k_lip-473x473.py'

model = dict(decode_head=dict(type='ASPOCHead', channels=256, dilations=(12, 24, 36)))
