# Levi & Ullman (ENL) Table 4 row "baseline".
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']
