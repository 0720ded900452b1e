# Cao et al. (GCNet) Table 12a: GC backbone (c3-c5, r = 4) + GC head (att+add, r = 4).
_base_ = './gc-head-att-add_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(backbone=dict(plugins=[dict(
    cfg=dict(type='GlobalContextBlock', ratio=4),
    stages=(False, True, True, True),
    position='after_conv3')]))
