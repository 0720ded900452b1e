# Levi & Ullman (ENL) Table 3 row "cos mul".
# Original NL (Eq. 2, softmax) times the DCT filter (Eq. 6 with L = E^ E^T of
# Eq. 8), fused with the normalised softmax as in Eq. 7: y = (softmax . L) g.
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit', similarity='exp', pos_enc='dct', pos_fusion='mul', init_std=0.01)))
