# Lee et al. Table 4 (b) R-50-FPN + GC: self-attention between C5 and P5 (Fig. 4), mmctx's SAFPN
# (registered in mmdet's registry, hence the cross-scope type), 1 layer x 4 heads as Tables 1-2;
# its dense layers initialised from conv1 / conv3 of c5's block 2 (layer4.1) of the checkpoint
# the backbone loads (Lee et al. §3.4, §4.5), as the detection "+ GC" configs.
_base_ = ['./_base_/sem-fpn_r50_fpn_adam-sgd-4xb4-80k_coco-stuff164k-512x512.py']
model = dict(neck=dict(
    type='mmdet.SAFPN',
    attention_cfg=dict(
        type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1,
        init_cfg=dict(type='BottleneckAttentionInit', checkpoint={{_base_.model.pretrained}},
                      prefix='layer4.1.'))))
