# Lee et al. Table 4 (a) R-50-FPN: semantic FPN on mmseg's FPN.
_base_ = ['./_base_/sem-fpn_r50_fpn_adam-sgd-4xb4-80k_coco-stuff164k-512x512.py']
