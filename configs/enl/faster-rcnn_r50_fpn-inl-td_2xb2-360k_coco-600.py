# Levi & Ullman (ENL) Table 5 row "INL 1/N" (original NL normalised by 1/N).
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='explicit', similarity='dot', phi_norm='1/N', init_std=0.01)))
