"""ENLFPN (mmctx/models/necks/enlfpn.py): Levi & Ullman, "Efficient Coarse-to-Fine Non-Local
Module for the Detection of Small Objects" §4; the bad-input checks it shares with SAFPN
(mmctx/models/necks/_checks.py) are tested here for both."""
import pytest
import torch
import torch.nn.functional as F

from det_helpers import fpn_inputs as _fpn_inputs

pytestmark = pytest.mark.usefixtures('mmdet_scope')


def test_enlfpn_applies_blocks_before_each_upsampling():
    """Reference: laterals, then TD from res5 with block(l_i) before upsampling."""
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(
        type='ENLFPN', in_channels=[8, 16, 32, 64], out_channels=8,
        num_outs=5, block_cfg=dict(type='EfficientNonLocal2d', init_std=0.5)))
    xs = _fpn_inputs()
    lat = [conv(x) for conv, x in zip(neck.lateral_convs, xs)]
    for i in (3, 2, 1):  # res5, res4, res3
        lat[i] = neck.td_blocks[str(i)](lat[i])
        lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[2:],
                                                mode='nearest')
    ref = [conv(x) for conv, x in zip(neck.fpn_convs, lat)]
    ref.append(F.max_pool2d(ref[-1], 1, stride=2))
    outs = neck(xs)
    assert len(outs) == 5
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r)
    # the blocks act: with them removed the output changes
    plain = MODELS.build(dict(type='FPN', in_channels=[8, 16, 32, 64],
                              out_channels=8, num_outs=5))
    plain.load_state_dict(neck.state_dict(), strict=False)
    assert not torch.allclose(plain(xs)[0], outs[0])
    assert set(neck.td_blocks.keys()) == {'1', '2', '3'}


def test_enlfpn_variants_and_init():
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='ENLFPN', in_channels=[8, 16, 32, 64],
                             out_channels=16, num_outs=5,
                             block_cfg=dict(type='conv5')))
    conv = neck.td_blocks['3']
    assert conv.kernel_size == (5, 5)
    assert abs(conv.weight.std().item() - 0.01) < 0.003
    # no BN inside the blocks (Levi & Ullman §4)
    neck = MODELS.build(dict(type='ENLFPN', in_channels=[8, 16, 32, 64],
                             out_channels=16, num_outs=5))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in neck.td_blocks.modules())
    with pytest.raises(ValueError, match='block_levels'):
        MODELS.build(dict(type='ENLFPN', in_channels=[8, 16, 32, 64],
                          out_channels=8, num_outs=5, block_levels=(0, 1)))


@pytest.mark.parametrize('neck_type', ['ENLFPN', 'SAFPN'])
def test_fpn_necks_report_bad_inputs(neck_type):
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type=neck_type, in_channels=[8, 16, 32, 64],
                             out_channels=8, num_outs=5))
    with pytest.raises(ValueError, match='4 input levels.*got 3'):
        neck(_fpn_inputs()[:3])
    with pytest.raises(ValueError, match='1x1'):
        neck(_fpn_inputs(size=8))
