# Cao et al., Global Context Networks, Table 4: the Concat instantiation of the
# non-local head on Cityscapes (the NL head of Table 12a / 13 with another pairwise function);
# the statistics of the table come from tools/analysis_tools/attention_stats.py.
_base_ = './nl-head_r101-d8_4xb2-60k_cityscapes-769x769.py'
model = dict(decode_head=dict(context_cfg=dict(mode='concatenation')))
