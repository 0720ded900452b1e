# Cao et al. (GCNet) Table 7(a) R101 baseline: Mask R-CNN, ResNet-101 FPN,
# SyncBN backbone, 1x (mmdet's own config).
_base_ = 'mmdet::gcnet/mask-rcnn_r101-syncbn_fpn_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
