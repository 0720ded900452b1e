"""ENLFPN / SAFPN / C4 self-attention necks and their configs.

ENLFPN: Levi & Ullman, "Efficient Coarse-to-Fine Non-Local Module for the
Detection of Small Objects" §4; SAFPN and C4SelfAttentionNeck: Lee, Kim, Jung,
"Improving Object Detection Quality by Incorporating Global Contexts via
Self-Attention" §3.3.
"""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from det_helpers import CONFIGS, build_detector, det_configs, train_step
from mmctx.utils.metafile import metafile_models
from zoo_helpers import readme_params

# every ENL config is a detector (configs/enl/metafile.yml lists them; no config walk here)
ENL_CONFIGS = sorted(osp.join(CONFIGS, 'enl', name) for name in metafile_models('enl'))
GSA_CONFIGS = det_configs('gsa')


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('path', ENL_CONFIGS, ids=osp.basename)
def test_enl_config_one_step(path):
    model, cfg = build_detector(path)
    # the metafile's "Parameters (M)": all params, frozen ones included (the settings of
    # each config against its row: tests/test_configs/test_enl.py)
    ours = metafile_models('enl')[osp.basename(path)]['Metadata']['Parameters (M)']
    assert _count(model) / 1e6 == pytest.approx(ours, abs=0.006)
    loss = train_step(model, size=128)
    assert torch.isfinite(loss)
    grads = [p.grad for n, p in model.named_parameters()
             if 'td_blocks' in n and p.requires_grad]
    if cfg.model.neck.type == 'ENLFPN':
        assert len(model.neck.td_blocks) == 3
        assert grads and all(g is not None for g in grads)


@pytest.mark.parametrize('path', GSA_CONFIGS, ids=osp.basename)
def test_gsa_config_one_step(path):
    # test only: few RoIs through the C5 RoI head of the C4 detectors (CPU time)
    small = dict()
    if 'c4' in osp.basename(path):
        small = {'model.train_cfg.rpn_proposal.max_per_img': 32,
                 'model.train_cfg.rcnn.sampler.num': 16}
    model, cfg = build_detector(path, **small)
    name = osp.basename(path)
    ours = readme_params('gsa', 'Detection')[name]
    assert _count(model) / 1e6 == pytest.approx(ours, abs=0.006)  # README: all params
    assert cfg.model.backbone.depth == (101 if 'r101' in name else 50)
    assert (cfg.model.get('neck', {}).get('type') in ('SAFPN', 'C4SelfAttentionNeck')) == ('gsa' in name)
    loss = train_step(model, size=128)
    assert torch.isfinite(loss)
    neck = cfg.model.get('neck')
    if neck and neck.type in ('SAFPN', 'C4SelfAttentionNeck'):
        att = model.neck.attention
        assert len(att.layers) == neck.attention_cfg.num_layers if hasattr(att, 'layers') else True
        assert all(p.grad is not None for p in att.parameters())


def _fpn_inputs(channels=(8, 16, 32, 64), size=32):
    torch.manual_seed(1)
    return [torch.randn(2, c, size // 2**i, size // 2**i)
            for i, c in enumerate(channels)]


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


def test_safpn_attends_c5_before_p5():
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='SAFPN', in_channels=[8, 16, 32, 64],
                             out_channels=8, num_outs=5,
                             attention_cfg=dict(type='BottleneckSelfAttention',
                                                reduction=4, num_heads=2)))
    plain = MODELS.build(dict(type='FPN', in_channels=[8, 16, 32, 64],
                              out_channels=8, num_outs=5))
    plain.load_state_dict(neck.state_dict(), strict=False)
    xs = _fpn_inputs()
    ref = plain(xs[:3] + [neck.attention(xs[3])])
    for o, r in zip(neck(xs), ref):
        torch.testing.assert_close(o, r)
    assert neck.attention.__class__.__name__ == 'BottleneckSelfAttention'


def test_c4_neck():
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='C4SelfAttentionNeck', in_channels=16,
                             attention_cfg=dict(type='BottleneckSelfAttention',
                                                num_heads=2)))
    x = torch.randn(2, 16, 6, 6)
    out, = neck((x, ))
    torch.testing.assert_close(out, neck.attention(x))
    with pytest.raises(ValueError, match='1 input levels'):
        neck((x, x))
    with pytest.raises(ValueError, match='C4'):
        neck((torch.randn(2, 16, 1, 1), ))
