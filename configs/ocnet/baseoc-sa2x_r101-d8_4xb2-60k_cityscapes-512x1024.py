# OCNet (Yuan et al.) Table 3: SA-2x, Base-OC (SA) with the dense relation
# computed on the 2x down-sampled map and the context upsampled back;
# variant='official' (inherited): max pooling and align_corners=True upsampling,
# as the released SA block with scale=2.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

# Base-OC (SA) of ./baseoc-sa_r101-d8_4xb2-60k_cityscapes-512x1024.py plus the down-sampling
model = dict(decode_head=dict(attention='sa', downsample=2))
