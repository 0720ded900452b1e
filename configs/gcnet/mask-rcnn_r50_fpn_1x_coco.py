# Cao et al. (GCNet) Table 6(a) "fixBN / 2fc (w/o BN)" baseline: mmdet's
# Mask R-CNN R-50 FPN 1x as is (frozen BN statistics in the backbone).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
