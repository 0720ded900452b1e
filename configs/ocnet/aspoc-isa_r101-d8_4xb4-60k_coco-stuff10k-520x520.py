# OCNet (Yuan et al.) Table 11 (COCO-Stuff-10k test): OCNet (w/ ASP-OC), ResNet-101.
_base_ = './baseoc-isa_r101-d8_4xb4-60k_coco-stuff10k-520x520.py'

model = dict(decode_head=dict(type='ASPOCHead', channels=256, dilations=(12, 24, 36)))
