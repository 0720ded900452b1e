# Lee et al. Table 2 (d) R-101-FPN + GC.
_base_ = ['./_base_/retinanet_r50_fpn_600-1024.py']

pretrained = 'torchvision://resnet101'
# self-attention on C5 (2048 ch), its dense layers initialised from conv1 /
# conv3 of c5's block 2 (layer4.1) in the checkpoint the
# backbone loads (Lee et al. §3.4, §4.5)
model = dict(
    backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        type='SAFPN',
        attention_cfg=dict(
            type='BottleneckSelfAttention', reduction=4, num_heads=4, num_layers=1,
            init_cfg=dict(type='BottleneckAttentionInit', checkpoint=pretrained,
                          prefix='layer4.1.'))))
