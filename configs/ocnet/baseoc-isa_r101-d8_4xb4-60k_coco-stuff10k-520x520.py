# OCNet (Yuan et al.) Table 11 (COCO-Stuff-10k test): OCNet (w/ Base-OC), ResNet-101.
_base_ = './_base_/ocnet_r101-d8_4xb4-60k_coco-stuff10k-520x520.py'
