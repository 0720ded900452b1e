# Levi & Ullman (ENL) Table 3 row "l1 mul".
# Original NL with exp(theta^T phi) * exp(-l1/50) normalised by Z (Eqs. 6,
# 10): a softmax with the logit bias -l1/50.
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit', similarity='exp', pos_enc='l1', pos_fusion='mul', init_std=0.01)))
