# OCNet (Yuan et al.) ADE20K schedule (§4.2): SGD, lr 0.02 with poly decay
# (power 0.9, to 0), weight decay 1e-4, 150k iterations (batch 16: 4 GPUs x 4).
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'
optim_wrapper = dict(optimizer=dict(lr=0.02, weight_decay=0.0001))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=150000, by_epoch=False)
]
train_cfg = dict(max_iters=150000, val_interval=15000)
default_hooks = dict(checkpoint=dict(interval=15000))
