# Levi & Ullman (ENL) Table 5 row "ENL 1/N / none".
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='efficient', phi_norm='1/N', theta_norm='none', init_std=0.01)))
