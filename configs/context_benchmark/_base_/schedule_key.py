# The context benchmark's schedule, shared by its segmentation and detection
# fragments: iteration-based, linear warm-up over the first warmup_fraction of
# the iterations (10 %; the RetinaNet fragment's 20 %), cosine to 0, no
# checkpoint and no validation inside training (the benchmark scores the
# trained model itself). max_iters is a placeholder:
# tools/analysis_tools/context_benchmark.py (compose_config) sets each row's
# iterations and everything derived from them (the warm-up's end included).
max_iters = 600
warmup_fraction = 0.1
param_scheduler = [
    dict(type='LinearLR', start_factor=0.04, by_epoch=False, begin=0, end=max_iters // 10),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=max_iters // 10, end=max_iters, eta_min=0)
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters + 1)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(_delete_=True, type='CheckpointHook', by_epoch=False, interval=max_iters + 1,
                    save_last=False),
    visualization=dict(draw=False))
log_processor = dict(by_epoch=False)
