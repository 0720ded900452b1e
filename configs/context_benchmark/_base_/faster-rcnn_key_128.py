# The context benchmark's Faster R-CNN setting for Levi & Ullman's top-down
# rows (ENL), merged over a paper Faster R-CNN config by
# tools/analysis_tools/context_benchmark.py: the paper's detector, neck type
# (FPN or ENLFPN) and block stay; data, widths and sizes shrink to a CPU.
# The blocks act on a top-down FPN level before it is upsampled, so the trunk
# needs a second stage, and the key has to lie farther away:
# - data: the key scenes at 128 x 128, every object pixel more than 64 px
#   from the key (mmctx.analysis.context_benchmark.KEY_DISTANCE; the tool
#   draws them, the pipeline takes them at their size), the same discs (14-30 px:
#   small objects here); schedule and optimiser as for every detection row
#   (det_data_key_96.py: AdamW lr 1e-2, batch 8, 1200 its);
# - backbone: det_trunk_key_96.py's ResNet-50 layout at width 16 with its
#   first two stages, C2 (stride 4, 64 channels, 32 x 32) and C3 (stride 8,
#   128 channels, 16 x 16), BN, from scratch;
# - neck: the paper's FPN on C2 and C3, two 32-channel levels, P2 and P3, no
#   extra levels: the one top-down level that is upsampled is C3's, where the
#   rows put the paper's res5 / res4 / res3 blocks;
# - RPN and RoI box head: rcnn_key.py (as for Mask R-CNN) on P2 and P3
#   (anchors 16 / 20 / 25 px at stride 4, twice that at stride 8; the RoIs of
#   the discs map to P2).
# The floor's reach from a disc's box stops short of the key: a one-pixel RoI
# sees 53 px (receptive_radius), a box corner lies at most 4.4 px from its
# disc (tests/test_tools/test_context_benchmark.py).
_base_ = ['./det_data_key_96.py', './rcnn_key.py']
anchors = dict(scales=None, octave_base_scale=4, scales_per_octave=3, ratios=[1.0],
               strides=[4, 8])
model = dict(
    backbone=dict(num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(0, 1)),
    neck=dict(in_channels=[64, 128], num_outs=2),
    rpn_head=dict(anchor_generator=anchors),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[4, 8])))
