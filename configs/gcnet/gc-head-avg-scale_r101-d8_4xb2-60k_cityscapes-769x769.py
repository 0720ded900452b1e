# Cao et al. (GCNet) Table 12b: GC head (avg+scale, SE with layer norm), GC block r = 4 (§5.4);
# 'scale' = sigmoid channel rescaling ('mul'), 'add' = broadcast addition (Eq. 5).
_base_ = './_base_/ctx-head_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(decode_head=dict(context_cfg=dict(
    _delete_=True, type='GlobalContextBlock', ratio=4, pooling='avg', fusion='mul')))
