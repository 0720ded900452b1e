# Cao et al. (GCNet) Table 12a: GC backbone (c3-c5), FCN baseline† head. A GC block (r = 4, the paper's
# segmentation default, §5.4) after conv3 of every bottleneck of c3, c4 and c5, as in its
# detection setting (Table 5). r = 4 is what Table 12's 89.92 M (+18.96 M) counts.
_base_ = './fcn-concat_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(backbone=dict(plugins=[dict(
    cfg=dict(type='GlobalContextBlock', ratio=4),
    stages=(False, True, True, True),
    position='after_conv3')]))
