# OCNet (Yuan et al.) PASCAL-Context schedule (§4.2): SGD, lr 0.001 with poly
# decay (power 0.9, to 0), weight decay 1e-4, 30k iterations (batch 16: 4 GPUs x 4).
_base_ = 'mmseg::_base_/schedules/schedule_40k.py'
optim_wrapper = dict(optimizer=dict(lr=0.001, weight_decay=0.0001))
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=30000, by_epoch=False)
]
train_cfg = dict(max_iters=30000, val_interval=3000)
default_hooks = dict(checkpoint=dict(interval=3000))
