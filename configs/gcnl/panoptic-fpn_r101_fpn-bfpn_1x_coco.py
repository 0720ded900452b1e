# Woo et al. (GCNL) Table 3: + BFPN (Libra R-CNN's balanced feature pyramid with a
# non-local refine, mmdet's BFP; the neck only, no Libra losses/sampler).
_base_ = 'mmdet::panoptic_fpn/panoptic-fpn_r101_fpn_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
# gathered at P4 of P2-P6, as Libra R-CNN does
model = dict(neck=[
    {{_base_.model.neck}},
    dict(type='BFP', in_channels=256, num_levels=5, refine_level=2,
         refine_type='non_local')
])
