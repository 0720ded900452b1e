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
# - RPN: one level, the trunk's anchors (det_trunk_key_96.py: 16 / 20 / 25 px,
#   ratio 1);
# - RoI head: RoIAlign on P2 alone, 2fc box head of 64 channels, 4-conv mask
#   head of 32 channels; 64 RoIs sampled per image (512 in the paper), 100
#   proposals kept (1000), at most 50 detections (the RetinaNet fragment's).
#   A RoI's class sees P2 inside its box only, and every P2 pixel's receptive
#   field stops short of the key: the floor must guess (measured: its context
#   accuracy stays at chance while its oracle ceiling reaches 100 %).
_base_ = ['./det_data_key_96.py', './det_trunk_key_96.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale={{_base_.img_size}}, keep_ratio=True),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
model = dict(
    rpn_head=dict(in_channels=32, feat_channels=32,
                  anchor_generator={{_base_.anchors}}),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32, featmap_strides=[4]),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=3),
        mask_roi_extractor=dict(out_channels=32, featmap_strides=[4]),
        mask_head=dict(in_channels=32, conv_out_channels=32, num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=400, max_per_img=100),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=400, max_per_img=100),
                  rcnn=dict(score_thr=0.05, max_per_img=50)))
