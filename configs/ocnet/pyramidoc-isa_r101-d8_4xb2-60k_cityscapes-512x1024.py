# OCNet (Yuan et al.) Table 5: + Pyramid-OC (ISA): 1x1, 2x2, 3x3, 6x6 regions;
# variant='official' (inherited): floor(H / s) regions, the remainder in the last.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

model = dict(decode_head=dict(type='PyramidOCHead', pyramid_scales=(1, 2, 3, 6)))
