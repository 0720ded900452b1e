# Lee et al. Table 5 (b) R-50-FPN + GC.
_base_ = ['./_base_/panoptic-fpn_r50_fpn_600-1024.py']

# self-attention on C5 (2048 ch), its dense layers initialised from conv1 /
# conv3 of c5's block 2 (layer4.1) in the checkpoint the
# backbone loads (Lee et al. §3.4, §4.5)
model = dict(
    neck=dict(
        type='SAFPN',
        attention_cfg=dict(
            type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1,
            init_cfg=dict(type='BottleneckAttentionInit', checkpoint={{_base_.model.backbone.init_cfg.checkpoint}},
                          prefix='layer4.1.'))))
