# OCNet (Yuan et al.) Table 7 (Cityscapes test): OCNet (w/ Base-OC), HRNetV2-W48.
_base_ = './_base_/ocnet_hr48_4xb2-100k-ohem_cityscapes-trainval-512x1024.py'
