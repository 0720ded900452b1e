# Levi & Ullman (ENL) Table 4 row "+3conv5, TD" (5x5 convs at the same places).
# Context blocks on the TD stream at res5, res4, res3 (ENLFPN).
_base_ = ['./_base_/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py']

model = dict(neck=dict(type='ENLFPN', block_levels=(3, 2, 1),
                       block_cfg=dict(type='conv5', init_std=0.01)))
