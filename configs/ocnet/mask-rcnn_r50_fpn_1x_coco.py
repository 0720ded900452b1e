# OCNet (Yuan et al.) Table 12 row "Mask-RCNN, 1x": mmdet's Mask R-CNN R-50-FPN, ImageNet
# initialisation, batch 16 (8 GPUs x 2), SGD lr 0.02, wd 1e-4, 12 epochs with
# lr x0.1 after epochs 8 and 11 (maskrcnn-benchmark's 90k iterations, steps at
# 60k / 80k, are ~12.2 epochs of COCO train2017 at batch 16).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py']
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
