# OCNet (Yuan et al.) Table 10 (LIP val): OCNet (w/ Base-OC), HRNetV2-W48.
_base_ = './_base_/ocnet_hr48_4xb8-100k_lip-473x473.py'
