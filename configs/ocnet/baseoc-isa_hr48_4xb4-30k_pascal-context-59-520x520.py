# OCNet (Yuan et al.) Table 9 (PASCAL-Context test): OCNet (w/ Base-OC), HRNetV2-W48.
_base_ = './_base_/ocnet_hr48_4xb4-30k_pascal-context-59-520x520.py'
