# The context benchmark's detection trunk, shared by its RetinaNet
# (det_key_96.py) and Mask R-CNN (mask-rcnn_key_96.py) fragments: the paper
# config's backbone type (mmdet ResNet or ContextResNet, with its plugins) in
# the ResNet-50 layout (Bottleneck, where the papers' blocks plug in) at base
# width 16, its stem and first stage only (C2: output stride 4, 64 channels,
# a 24 x 24 map), BN, from scratch; the paper's FPN on C2 alone, one 32-channel
# output level, P2 (det_key_96.py says why one stage); and the anchors of
# either head at stride 4: 16 / 20 / 25 px (octave base scale 4, 3 scales per
# octave, ratio 1; the discs are 14-30 px).
norm_cfg = dict(type='BN', requires_grad=True)
anchors = dict(scales=None, octave_base_scale=4, scales_per_octave=3, ratios=[1.0], strides=[4])
model = dict(
    backbone=dict(
        depth=50, base_channels=16, stem_channels=16, num_stages=1, strides=(1, ),
        dilations=(1, ), out_indices=(0, ), frozen_stages=-1, norm_cfg=norm_cfg,
        norm_eval=False, style='pytorch', init_cfg=None),
    neck=dict(in_channels=[64], out_channels=32, start_level=0, add_extra_convs=False,
              num_outs=1))
