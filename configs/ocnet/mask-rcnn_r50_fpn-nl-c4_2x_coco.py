# OCNet (Yuan et al.) Table 12 row "+ NL, 2x": the 1x config's model, trained 24 epochs with
# lr x0.1 after epochs 16 and 22 (mmdet's 2x schedule).
_base_ = ['./mask-rcnn_r50_fpn-nl-c4_1x_coco.py']

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[16, 22],
         gamma=0.1)
]
