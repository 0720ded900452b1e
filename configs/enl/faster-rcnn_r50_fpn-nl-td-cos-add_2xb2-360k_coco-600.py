# Levi & Ullman (ENL) Table 3 row "cos add".
# Original NL (Eq. 2, softmax) + the DCT term added after the softmax (Eq. 7):
# y = softmax(theta^T phi) g + E^[E^T g], the position term of the ENL (Eq. 9).
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit', similarity='exp', pos_enc='dct', pos_fusion='add', init_std=0.01)))
