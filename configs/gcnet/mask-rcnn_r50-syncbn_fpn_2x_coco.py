# Cao et al. (GCNet) Table 6(b) "syncBN / 2fc, 2x" baseline: the Table 5
# baseline trained 24 epochs, lr decayed at 16 and 22 (mmdet's 2x).
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
