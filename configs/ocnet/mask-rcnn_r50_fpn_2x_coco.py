# OCNet (Yuan et al.) Table 12 row "Mask-RCNN, 2x": as the 1x row, 24 epochs with lr x0.1
# after epochs 16 and 22 (maskrcnn-benchmark's 180k iterations).
_base_ = ['mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
