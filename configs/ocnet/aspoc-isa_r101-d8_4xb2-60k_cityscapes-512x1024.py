# OCNet (Yuan et al.) Table 5: + ASP-OC (ISA): OCP branch (3x3 conv -> 256 + OCP),
# 1x1 and 3x3 rates 12/24/36 branches (256 each), 1x1 conv 1280 -> 256 in the
# paper's text; variant='official' (inherited) adds the released code's 3x3 conv
# 2048 -> 512 in front of the branches and fuses 1280 -> 512.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(type='ASPOCHead', channels=256, dilations=(12, 24, 36)))
