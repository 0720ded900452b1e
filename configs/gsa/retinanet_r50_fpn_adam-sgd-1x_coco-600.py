# Lee et al. Table 2 (a) R-50-FPN; Table 6 Adam + SGD.
_base_ = ['./_base_/retinanet_r50_fpn_600-1024.py']
