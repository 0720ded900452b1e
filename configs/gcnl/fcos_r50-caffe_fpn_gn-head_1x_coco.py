# Woo et al. (GCNL) Table 2: baseline row (mmdet's config as is).
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
