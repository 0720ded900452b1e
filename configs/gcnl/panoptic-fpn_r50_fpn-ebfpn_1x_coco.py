# Woo et al., "Global Context and Geometric Priors for Effective Non-Local
# Self-Attention", Table 3: + EBFPN (balanced pyramid refined by the GCNL block).
_base_ = 'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
# gathered at P4 of P2-P6; GCNL with C^ = C, 8 heads, keys/values
# sub-sampled by 2 with the input max-pooled before W_k / W_v (the order
# the paper's +0.66 GFLOPs imply; GCNLBlock's docstring has the count);
# the paper gives no dropout rate: 0.1 is ours.
model = dict(neck=[
    {{_base_.model.neck}},
    dict(type='EBFPN', in_channels=256, num_levels=5, refine_level=2,
         refine_cfg=dict(type='GCNLBlock', reduction=1, num_heads=8,
                         sub_sample=True, pool_order='before', attn_drop=0.1))
])
