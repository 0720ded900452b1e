# The context benchmark's Mask R-CNN setting, merged over a paper Mask R-CNN
# config (Cao et al., Global Context Networks, Table 5(a)) by
# tools/analysis_tools/context_benchmark.py: the paper's detector, backbone
# type and context blocks stay; data, widths and sizes shrink to a CPU.
# - data and schedule: det_data_key_96.py (the RetinaNet fragment's), with
#   the masks loaded for the mask head;
# - backbone and neck: det_trunk_key_96.py (the paper's ResNet-50 layout at
#   width 16, C2 only, BN, from scratch; FPN -> P2, 32 channels). The paper's
#   blocks sit in c3-c5 (GC) or c4 (NL, SNL); with one stage, the rows put
#   them in C2 (mmctx.analysis.context_benchmark);
# - RPN and RoI box head: rcnn_key.py (shared with the Faster R-CNN
#   fragment) on P2 alone, RPN anchors of the trunk (16 / 20 / 25 px, ratio
#   1), RoIAlign at stride 4; the 4-conv mask head at 32 channels.
#   A RoI's class sees P2 inside its box only, and every P2 pixel's receptive
#   field stops short of the key: the floor must guess (measured: its context
#   accuracy stays at chance while its oracle ceiling reaches 100 %).
_base_ = ['./det_data_key_96.py', './rcnn_key.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale_factor=1.0, keep_ratio=True),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    rpn_head=dict(anchor_generator={{_base_.anchors}}),
    roi_head=dict(
        bbox_roi_extractor=dict(featmap_strides=[4]),
        mask_roi_extractor=dict(out_channels=32, featmap_strides=[4]),
        mask_head=dict(in_channels=32, conv_out_channels=32, num_classes=3)))
