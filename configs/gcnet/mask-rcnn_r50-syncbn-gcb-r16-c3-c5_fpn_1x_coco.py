# Cao et al. (GCNet) default detection setting (§5.1): GC block (Eq. 5, r16,
# attention pooling, LN + ReLU, add fusion) after conv3 ("after1x1") of
# every bottleneck of c3, c4 and c5. Rows: Table 5(a) +all GC, 5(b)
# after1x1, 5(c) c3+c4+c5, 5(d) r16+LN+ReLU, 5(e) ratio 16, 5(f) att+add,
# Table 6(a) syncBN / 2fc +GC r16, Table 7(a) R50 +GC r16.
_base_ = './mask-rcnn_r50-syncbn_fpn_1x_coco.py'

model = dict(
    backbone=dict(plugins=[
        dict(
            cfg=dict(type='GlobalContextBlock', ratio=16),
            stages=(False, True, True, True),
            position='after_conv3')
    ]))
