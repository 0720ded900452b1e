# OCNet (Yuan et al.) Table 8 (ADE20K val): OCNet (w/ Base-OC), HRNetV2-W48.
_base_ = './_base_/ocnet_hr48_4xb4-150k_ade20k-520x520.py'
