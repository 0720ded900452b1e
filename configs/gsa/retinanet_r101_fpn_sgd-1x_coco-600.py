# Lee et al., Table 2 (c) R-101-FPN (37.5), SGD with momentum: Table 6 shows Table 2's R-50
# rows are momentum runs; the R-101 rows are taken to be too.
# The Adam-then-SGD config of the same row with its SGD optimizer from the start, on
# mmdet's 1x step schedule (x0.1 at epochs 8 and 11).
_base_ = ['./retinanet_r101_fpn_adam-sgd-1x_coco-600.py']

optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer={{_base_.sgd_optimizer}})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
custom_hooks = []
