# OCNet (Yuan et al.) baseline model (§3.4, §4.2): dilated ResNet-101 (output
# stride 8), SyncBN, auxiliary FCN loss on res4 (stage 3) with weight 0.4. The
# decode head is the 'Dilated ResNet-101' baseline row of Tables 1, 2 and 5:
# one 3x3 conv (2048 -> 512) and the classifier. A leaf sets the classes and
# the crop its data set fragment uses:
#   model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=...),
#                auxiliary_head=dict(num_classes=...))
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
model = dict(
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(num_convs=1, concat_input=False),
    auxiliary_head=dict(loss_decode=dict(loss_weight=0.4)))
