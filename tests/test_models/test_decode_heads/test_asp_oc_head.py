"""ASPOCHead (Yuan et al., "OCNet: Object Context for Semantic Segmentation",
§3.4, Fig. 5d) against slow references, and its ``variant='official'`` against
a re-implementation of the authors' released block (``tests/ocnet_helpers.py``)."""


import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from ocnet_helpers import (SHAPES, build_head, build_official, calibrate, cbr,
                           check_any_batch_and_map, check_traced_at_one_size_runs_at_others,
                           check_trains, HEAD, load_cbr, load_sa, randomise, ReleasedSA)

import mmctx  # noqa: F401

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_paper_channel_numbers():
    """§3.4: ASP-OC five 256-channel branches, 1280 -> 256."""
    common = dict(in_channels=2048, num_classes=19, norm_cfg=dict(type='BN'))
    asp = MODELS.build(dict(type='ASPOCHead', channels=256, **common))
    reduce = asp.context_reduce.conv
    assert (reduce.in_channels, reduce.out_channels) == (2048, 256)
    assert [b.conv.dilation[0] for b in asp.branches[1:]] == [12, 24, 36]
    assert asp.branches[0].conv.kernel_size == (1, 1)
    assert (asp.fuse.conv.in_channels, asp.fuse.conv.out_channels) == (1280, 256)


def test_asp_oc_branches():
    head = build_head(dict(type='ASPOCHead', attention='isa', dilations=(2, 3, 4),
                      ocp_cfg=dict(groups=(2, 2))))
    x = torch.randn(1, 32, 7, 9)
    with torch.no_grad():
        outs = [head.ocp(head.context_reduce(x))]
        outs.append(head.branches[0](x))
        for branch, d in zip(head.branches[1:], (2, 3, 4)):
            conv = branch.conv
            y = F.conv2d(x, conv.weight, conv.bias, padding=d, dilation=d)
            outs.append(branch.activate(branch.bn(y)))
        expected = head.conv_seg(head.fuse(torch.cat(outs, 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_official_asp_oc_sa_equals_the_released_block():
    """The released ASP-OC (SA): 3x3 conv C_in -> 2c in front; OC branch 3x3 conv
    2c -> c, SA on the 2x max-pooled map (d = dv = c/2) upsampled back, BN-ReLU;
    1x1 and dilated 3x3 branches 2c -> c; 5c -> 2c fusion; classifier 2c -> K."""
    c, dil = 8, (1, 2, 3)
    ref = nn.ModuleDict(dict(
        pre=cbr(12, 2 * c, 3, bias=True), reduce=cbr(2 * c, c, 3, bias=True),
        sa=ReleasedSA(c, c // 2, c // 2, scale=2),
        post=nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()),
        b1=cbr(2 * c, c), b2=cbr(2 * c, c, 3, dil[0]), b3=cbr(2 * c, c, 3, dil[1]),
        b4=cbr(2 * c, c, 3, dil[2]), fuse=cbr(5 * c, 2 * c), cls=nn.Conv2d(2 * c, 5, 1)))
    ref = randomise(ref, 0)

    def released(x):
        x = ref['pre'](x)
        ctx = ref['post'](ref['sa'](ref['reduce'](x)))
        outs = [ctx] + [ref[b](x) for b in ('b1', 'b2', 'b3', 'b4')]
        return ref['cls'](ref['fuse'](torch.cat(outs, 1)))

    calibrate(ref, released, torch.randn(2, 12, 8, 8, dtype=torch.float64))
    with torch.no_grad():  # the OC branch is alive: it varies over the map
        x = torch.randn(2, 12, 7, 9, dtype=torch.float64)
        ctx = ref['post'](ref['sa'](ref['reduce'](ref['pre'](x))))
        assert ctx.std(dim=(-2, -1)).mean() > 0.05
    head = build_official(dict(type='ASPOCHead', attention='sa', dilations=dil))
    load_cbr(head.pre_reduce, ref['pre'])
    load_cbr(head.context_reduce, ref['reduce'])
    load_sa(head.ocp.attention, ref['sa'])
    head.context_post[0].load_state_dict(ref['post'][0].state_dict())
    for mine, name in zip(head.branches, ('b1', 'b2', 'b3', 'b4')):
        load_cbr(mine, ref[name])
    load_cbr(head.fuse, ref['fuse'])
    head.conv_seg.load_state_dict(ref['cls'].state_dict())
    head = head.eval()
    for hw in ((7, 9), (8, 8)):
        x = torch.randn(2, 12, *hw, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(head([x]), released(x), rtol=1e-5, atol=1e-5)
    # the front conv, the 2c fusion and the post BN are what the paper's text lacks
    paper = MODELS.build(dict(HEAD, in_channels=12, channels=8, type='ASPOCHead',
                              attention='sa', dilations=dil))
    assert paper.pre_reduce is None and paper.context_post is None
    assert paper.fuse.conv.out_channels == 8 and head.fuse.conv.out_channels == 16


def test_official_asp_oc_isa_is_the_released_isa_without_pooling():
    head = build_official(dict(type='ASPOCHead', attention='isa', dilations=(1, 2, 3),
                          ocp_cfg=dict(groups=(2, 2))))
    isa = head.ocp.attention
    assert isa.variant == 'official' and isa.groups == (2, 2)
    assert head.context_downsample == 1 and head.context_post is None
    head = head.eval()
    x = torch.randn(2, 12, 7, 9, dtype=torch.float64)
    with torch.no_grad():
        y = head.pre_reduce(x)
        outs = [head.ocp(head.context_reduce(y))] + [b(y) for b in head.branches]
        torch.testing.assert_close(head([x]), head.conv_seg(head.fuse(torch.cat(outs, 1))))


@pytest.mark.parametrize('attention', ['sa', 'isa'])
@pytest.mark.parametrize('variant', ['paper', 'official'])
def test_without_norm_every_conv_keeps_its_activation(attention, variant):
    """norm_cfg=None: no norm layer anywhere (the official SA's BN-ReLU after the
    pooled OCP becomes a ReLU), and the head runs."""
    head = build_head(dict(type='ASPOCHead', attention=attention, variant=variant,
                           dilations=(1, 2, 3), norm_cfg=None))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in head.modules())
    if head.context_post is not None:
        assert [type(m) for m in head.context_post] == [nn.ReLU]
    x = torch.randn(2, 32, 7, 9)
    with torch.no_grad():
        out = head([x])
        assert out.shape == (2, 5, 7, 9) and torch.isfinite(out).all()
        if head.context_post is not None:  # the OC branch ends in that ReLU
            y = x if head.pre_reduce is None else head.pre_reduce(x)
            assert head._context(y).min() >= 0


def test_small_maps_work():
    out = build_head(dict(type='ASPOCHead', attention='isa'))([torch.randn(1, 32, 3, 3)])
    assert out.shape == (1, 5, 3, 3) and torch.isfinite(out).all()


def test_trains():
    check_trains(dict(type='ASPOCHead', dilations=(1, 2, 3)))


HEADS = {
    'asp-isa': dict(type='ASPOCHead', dilations=(1, 2, 3)),
    'asp-isa-official': dict(type='ASPOCHead', dilations=(1, 2, 3), variant='official'),
    'asp-sa-official': dict(type='ASPOCHead', dilations=(1, 2, 3), attention='sa',
                            variant='official'),
}


@pytest.mark.parametrize('name', sorted(HEADS))
@pytest.mark.parametrize('shape', SHAPES)
def test_any_batch_and_map_forward_and_backward(name, shape):
    check_any_batch_and_map(HEADS[name], shape)


@pytest.mark.parametrize('name', sorted(HEADS))
def test_traced_at_one_size_run_at_others(name):
    check_traced_at_one_size_runs_at_others(HEADS[name])


@pytest.mark.parametrize('cfg,word', [
    (dict(type='ASPOCHead', dilations=(12, 24.0, 36)), 'dilations'),
    (dict(type='ASPOCHead', dilations=()), 'dilations'),
    (dict(type='ASPOCHead', variant='official', pre_channels=0), 'pre_channels'),
    (dict(type='ASPOCHead', variant='mmseg'), 'variant'),
])
def test_bad_arguments_name_themselves(cfg, word):
    with pytest.raises(ValueError, match=word):
        build_head(cfg)
