# Woo et al., "Global Context and Geometric Priors for Effective Non-Local
# Self-Attention", Tables 2 and 3, the BFPN rows: Libra R-CNN's balanced
# feature pyramid with a non-local refine (mmdet's BFP; the neck only, no
# Libra losses / sampler), written once for every detector. A leaf appends it
# to its detector's FPN:
#   _base_ = ['mmdet::<detector config>', './_base_/models/bfpn.py']
#   model = dict(neck=[{{_base_.model.neck}}, {{_base_.bfpn_neck}}])
# Gathered at P4 of P2-P6 (refine_level=2), as Libra R-CNN does; a detector
# whose FPN gives P3-P7 (RetinaNet, FCOS) gathers at its P4 with
# dict(_base_.bfpn_neck, refine_level=1).
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
bfpn_neck = dict(type='BFP', in_channels=256, num_levels=5, refine_level=2,
                 refine_type='non_local')
