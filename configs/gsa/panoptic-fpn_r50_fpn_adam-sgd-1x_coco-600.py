# Lee et al. Table 5 (a) R-50-FPN.
_base_ = ['./_base_/panoptic-fpn_r50_fpn_600-1024.py']
