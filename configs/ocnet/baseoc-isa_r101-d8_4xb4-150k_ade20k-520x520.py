# OCNet (Yuan et al.) Table 8 (ADE20K val): OCNet (w/ Base-OC), ResNet-101.
_base_ = './_base_/ocnet_r101-d8_4xb4-150k_ade20k-520x520.py'
