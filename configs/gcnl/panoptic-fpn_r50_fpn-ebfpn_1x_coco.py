# Woo et al., "Global Context and Geometric Priors for Effective Non-Local
# Self-Attention", Table 3: + EBFPN (balanced pyramid refined by the GCNL block).
_base_ = ['mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py', './_base_/models/ebfpn.py']

model = dict(neck=[{{_base_.model.neck}}, {{_base_.ebfpn_neck}}])
