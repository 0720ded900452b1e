# OCNet (Yuan et al.) baseline model of Table 2 (§3.4, §4.2): dilated ResNet-50
# (output stride 8), SyncBN, auxiliary FCN loss on res4 with weight 0.4; the
# 'Dilated ResNet-50' decode head (one 3x3 conv 2048 -> 512 and the classifier).
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
model = dict(
    decode_head=dict(num_convs=1, concat_input=False),
    auxiliary_head=dict(loss_decode=dict(loss_weight=0.4)))
