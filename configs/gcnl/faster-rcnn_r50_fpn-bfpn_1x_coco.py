# Woo et al. (GCNL) Table 2: + BFPN (Libra R-CNN's balanced feature pyramid with a
# non-local refine, mmdet's BFP; the neck only, no Libra losses/sampler).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', './_base_/models/bfpn.py']

model = dict(neck=[{{_base_.model.neck}}, {{_base_.bfpn_neck}}])
