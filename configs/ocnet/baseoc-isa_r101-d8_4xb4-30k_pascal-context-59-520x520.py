# OCNet (Yuan et al.) Table 9 (PASCAL-Context test): OCNet (w/ Base-OC), ResNet-101.
_base_ = './_base_/ocnet_r101-d8_4xb4-30k_pascal-context-59-520x520.py'
