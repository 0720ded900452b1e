# seed 001 Table 12 (a: GC head = att+add; b: avg+scale), GC block r=4.
_base_ = './_base_/ctx-head_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(decode_head=dict(context_cfg=dict(_delete_=True, type='ContextBlock', ratio=1 / 4, pooling_type='avg', fusion_types=('channel_mul', ))))
