# OCNet (Yuan et al.) Table 7 (Cityscapes test): OCNet (w/ Base-OC), ResNet-101.
_base_ = './_base_/ocnet_r101-d8_4xb2-100k-ohem_cityscapes-trainval-512x1024.py'
