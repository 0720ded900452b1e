# Levi & Ullman (ENL) Table 2 row "+3NL, TD" (efficient, DCT position).
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-800.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='EfficientNonLocal2d', reduction=2, mode='efficient', phi_norm='softmax', pos_enc='dct', pos_fusion='add', init_std=0.01)))
