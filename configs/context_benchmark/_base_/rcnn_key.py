# The context benchmark's two-stage detectors: the detection trunk
# (det_trunk_key_96.py) and the heads shared by its Mask R-CNN
# (mask-rcnn_key_96.py) and Faster R-CNN (faster-rcnn_key_128.py) fragments,
# which set the levels (anchor and RoI strides): an RPN of 32 channels; RoI
# box head: 2fc of 64 channels on the neck's 32, 3 classes; 64 RoIs sampled
# per image (512 in the papers), 100 proposals kept (1000), at most 50
# detections (the RetinaNet fragment's). A RoI's class sees the neck's map
# inside its box only.
_base_ = ['./det_trunk_key_96.py']
model = dict(
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=400, max_per_img=100),
                   rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=400, max_per_img=100),
                  rcnn=dict(score_thr=0.05, max_per_img=50)))
