# Cao et al. (GCNet) Table 13: DANet (paper 71.29 M / 79.88; its head output is not concatenated with c5).
# mmseg's own DAHead R-101-D8 config (769x769 crops, 4x2 images, SyncBN, SGD lr 0.01,
# auxiliary head on c4: the seed's setting already) with the seed's schedule (§5.4: 60k steps,
# poly 0.9 to 0).
_base_ = 'mmseg::danet/danet_r101-d8_4xb2-80k_cityscapes-769x769.py'
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=60000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=60000, val_interval=6000)
