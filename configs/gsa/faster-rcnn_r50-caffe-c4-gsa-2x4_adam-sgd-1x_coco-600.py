# Lee et al. Table 3 layer x head = 2 x 4.
_base_ = ['./_base_/faster-rcnn_r50-caffe-c4_600-1024.py']

# self-attention on C4 (1024 ch), its dense layers initialised from conv1 /
# conv3 of c4's blocks 2-3 (layer3.1-3.2, one per layer) in the checkpoint the
# backbone loads (Lee et al. §3.4, §4.5)
model = dict(
    neck=dict(
        type='C4SelfAttentionNeck', in_channels=1024,
        attention_cfg=dict(
            type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=2,
            init_cfg=dict(type='BottleneckAttentionInit', checkpoint={{_base_.model.backbone.init_cfg.checkpoint}},
                          prefix=['layer3.1.', 'layer3.2.']))))
