# Seed 002 Table 6 R-101 + GC, SGD with momentum.
# The Adam-then-SGD config of the same row with SGD from the start.
_base_ = ['./faster-rcnn_r101-caffe-c4-gsa_adam-sgd-1x_coco-600.py']

# Table 6 'SGD with momentum' row: no Adam phase.
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
custom_hooks = []
