# Woo et al., "Global Context and Geometric Priors for Effective Non-Local
# Self-Attention", Table 2: + EBFPN (balanced pyramid refined by the GCNL block).
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', './_base_/models/ebfpn.py']

# the pyramid of P3-P7 is gathered at its P4
model = dict(neck=[{{_base_.model.neck}}, dict(_base_.ebfpn_neck, refine_level=1)])
