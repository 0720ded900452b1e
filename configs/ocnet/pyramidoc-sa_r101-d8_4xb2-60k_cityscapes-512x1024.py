# OCNet (Yuan et al.) Table 5: + Pyramid-OC (SA); variant='official' (inherited):
# floor(H / s) regions with the remainder in the last, SA values of 512 channels.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

# the head of ./pyramidoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py with SA
model = dict(
    decode_head=dict(type='PyramidOCHead', pyramid_scales=(1, 2, 3, 6), attention='sa'))
