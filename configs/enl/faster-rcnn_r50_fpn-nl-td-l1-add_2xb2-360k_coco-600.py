# Levi & Ullman (ENL) Table 3 row "l1 add".
# Original NL with L = exp(-l1/50) added to exp(theta^T phi) before the
# normaliser Z = sum_j F (Eqs. 6, 10).
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit', similarity='exp', pos_enc='l1', pos_fusion='add', init_std=0.01)))
