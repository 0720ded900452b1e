# Woo et al. (GCNL) Table 2: + BFPN (Libra R-CNN's balanced feature pyramid with a
# non-local refine, mmdet's BFP; the neck only, no Libra losses/sampler).
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', './_base_/models/bfpn.py']

# the pyramid of P3-P7 is gathered at its P4
model = dict(neck=[{{_base_.model.neck}}, dict(_base_.bfpn_neck, refine_level=1)])
