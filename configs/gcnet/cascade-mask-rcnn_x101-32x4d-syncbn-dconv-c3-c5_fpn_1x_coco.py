# Cao et al. (GCNet) Table 7(a) and 7(b) X101+DCN+Cascade baseline: Cascade
# Mask R-CNN, ResNeXt-101 32x4d FPN with deformable 3x3 convs in c3-c5,
# SyncBN backbone, 1x (mmdet's own config).
_base_ = 'mmdet::gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5_fpn_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
