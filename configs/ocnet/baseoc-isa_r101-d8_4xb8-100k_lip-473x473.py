# OCNet (Yuan et al.) Table 10 (LIP val): OCNet (w/ Base-OC), ResNet-101.
_base_ = './_base_/ocnet_r101-d8_4xb8-100k_lip-473x473.py'
