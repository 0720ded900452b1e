# OCNet (Yuan et al.) Cityscapes schedule (§4.2): SGD, lr 0.01 with poly decay
# (power 0.9, to 0), weight decay 5e-4, 60k iterations (batch 8: 4 GPUs x 2).
_base_ = 'mmseg::_base_/schedules/schedule_80k.py'
optim_wrapper = dict(optimizer=dict(lr=0.01, weight_decay=0.0005))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=60000, by_epoch=False)
]
train_cfg = dict(max_iters=60000, val_interval=6000)
default_hooks = dict(checkpoint=dict(interval=6000))
