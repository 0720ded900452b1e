# Cao et al. (GCNet) Table 7(a) X101 baseline: Mask R-CNN, ResNeXt-101
# 32x4d FPN, SyncBN backbone, 1x (mmdet's own config).
_base_ = 'mmdet::gcnet/mask-rcnn_x101-32x4d-syncbn_fpn_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
