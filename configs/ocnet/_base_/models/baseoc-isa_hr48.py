# OCNet (Yuan et al.): the model of ./baseoc-isa_r101-d8.py with HRNetV2-W48
# (ImageNet pretrained) in place of the dilated ResNet-101 (§3.4): the heads
# work on the final concatenation of the four resolutions (48+96+192+384 = 720
# channels, output stride 4); the auxiliary FCN loss (0.4) is on that same
# final representation (§4.2). The HRNetV2-W48 backbone is written here only.
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
hr_channels = [48, 96, 192, 384]
model = dict(
    pretrained='open-mmlab://msra/hrnetv2_w48',
    backbone=dict(
        _delete_=True,
        type='HRNet',
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(4, ),
                        num_channels=(64, )),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(4, 4),
                        num_channels=(48, 96)),
            stage3=dict(num_modules=4, num_branches=3, block='BASIC', num_blocks=(4, 4, 4),
                        num_channels=(48, 96, 192)),
            stage4=dict(num_modules=3, num_branches=4, block='BASIC', num_blocks=(4, 4, 4, 4),
                        num_channels=(48, 96, 192, 384)))),
    decode_head=dict(
        _delete_=True,
        type='BaseOCHead', channels=512, attention='isa', variant='official',
        in_channels=hr_channels, in_index=(0, 1, 2, 3), input_transform='resize_concat',
        dropout_ratio=0.1, num_classes=19,
        norm_cfg=dict(type='SyncBN', requires_grad=True), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(in_channels=hr_channels, in_index=(0, 1, 2, 3),
                        input_transform='resize_concat',
                        loss_decode=dict(loss_weight=0.4)))
