# OCNet (Yuan et al.) Table 5: + ASP-OC (SA); variant='official' (inherited): as
# the released ASP_OC_Module, the SA runs on the 2x max-pooled map, its output is
# upsampled back and followed by BN-ReLU.
_base_ = './baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'

# the head of ./aspoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py with SA
model = dict(
    decode_head=dict(type='ASPOCHead', channels=256, dilations=(12, 24, 36), attention='sa'))
