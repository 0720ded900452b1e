# OCNet (Yuan et al.) Table 7 (Cityscapes test): the setting of
# ./ocnet_r101-d8_4xb2-100k-ohem_cityscapes-trainval-512x1024.py
# with HRNetV2-W48 (ImageNet pretrained) in place of the dilated ResNet-101
# (§3.4): the heads work on the final concatenation of the four resolutions
# (48+96+192+384 = 720 channels, output stride 4); the auxiliary FCN loss
# (0.4) is on that same final representation (§4.2).
_base_ = './ocnet_r101-d8_4xb2-100k-ohem_cityscapes-trainval-512x1024.py'
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
    decode_head=dict(in_channels=hr_channels, in_index=(0, 1, 2, 3),
                     input_transform='resize_concat'),
    auxiliary_head=dict(in_channels=hr_channels, in_index=(0, 1, 2, 3),
                        input_transform='resize_concat'))
