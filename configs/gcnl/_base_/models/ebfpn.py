# Woo et al., "Global Context and Geometric Priors for Effective Non-Local
# Self-Attention": the EBFPN neck, written once for every detector of
# Tables 2 and 3. A leaf appends it to its detector's FPN:
#   _base_ = ['mmdet::<detector config>', './_base_/models/ebfpn.py']
#   model = dict(neck=[{{_base_.model.neck}}, {{_base_.ebfpn_neck}}])
# The pyramid is gathered at P4 of P2-P6 (refine_level=2); a detector whose
# FPN gives P3-P7 (RetinaNet, FCOS) gathers at its P4 with
# dict(_base_.ebfpn_neck, refine_level=1).
# GCNL with C^ = C, 8 heads, keys/values sub-sampled by 2 with the input
# max-pooled before W_k / W_v (the order the paper's +0.66 GFLOPs imply;
# GCNLBlock's docstring has the count); the paper gives no dropout rate: 0.1
# is ours.
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
ebfpn_neck = dict(type='EBFPN', in_channels=256, num_levels=5, refine_level=2,
                  refine_cfg=dict(type='GCNLBlock', reduction=1, num_heads=8,
                                  sub_sample=True, pool_order='before', attn_drop=0.1))
