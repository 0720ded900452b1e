# OCNet (Yuan et al.) Table 7 (Cityscapes test): OCNet (w/ ASP-OC), HRNetV2-W48.
_base_ = './baseoc-isa_hr48_4xb2-100k-ohem_cityscapes-trainval-512x1024.py'

model = dict(decode_head=dict(type='ASPOCHead', channels=256, dilations=(12, 24, 36)))
