# Cao et al. (GCNet) §5.4: Cityscapes, ResNet-101 dilated (c4, c5 stride 1), CCNet setting: crop 769x769,
# scale [0.5, 2], 4 GPUs x 2 images, SyncBN, SGD lr 0.01 poly 0.9 (to 0), ~60k steps, auxiliary
# head on c4. Head: context block on c5 (reduced to 512) concatenated with c5 (Table 13 "†").
_base_ = 'mmseg::ccnet/ccnet_r101-d8_4xb2-80k_cityscapes-769x769.py'
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)

model = dict(
    decode_head=dict(
        _delete_=True, type='ContextBlockHead', context_cfg=None,
        in_channels=2048, in_index=3, channels=512, concat_input=True, dropout_ratio=0.1,
        num_classes=19, norm_cfg=dict(type='SyncBN', requires_grad=True),
        # 769 = 8 * 96 + 1 crops: corner-aligned resizing, as mmseg's 769x769 configs, the
        # auxiliary head inherited here and the DANet / ANN / CCNet rows of Table 13
        align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
# lr = 0.01 (1 - iter / iter_max)^0.9 (Cao et al. (GCNet) §5.4)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=60000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=60000, val_interval=6000)
