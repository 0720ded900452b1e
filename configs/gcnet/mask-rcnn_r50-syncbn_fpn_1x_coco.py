# Cao et al. (GCNet) Table 5 baseline (every sub-table), Table 6(a) "syncBN /
# 2fc (w/o BN)" baseline and Table 7(a) R50 baseline: Mask R-CNN, ResNet-50
# FPN, SyncBN in the backbone (norm_eval off: statistics are updated, §5.1),
# frozen stem and c2, 2fc box head without BN, shorter side 800, 16 images,
# SGD lr 0.02, 1x (12 epochs, decay at 8 and 11) -- mmdet's own config.
_base_ = 'mmdet::gcnet/mask-rcnn_r50-syncbn_fpn_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
