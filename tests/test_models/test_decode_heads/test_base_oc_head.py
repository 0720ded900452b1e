"""BaseOCHead (Yuan et al., "OCNet: Object Context for Semantic Segmentation",
§3.4, Fig. 5b) against slow references, and its ``variant='official'`` against
re-implementations of the authors' released blocks (``tests/ocnet_helpers.py``)."""


import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from ocnet_helpers import (SHAPES, build_head, build_official, calibrate, cbr,
                           check_any_batch_and_map, check_traced_at_one_size_runs_at_others,
                           check_trains, explicit_sa, HEAD, load_cbr, load_sa, randomise,
                           ReleasedSA)

import mmctx  # noqa: F401

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_paper_channel_numbers():
    """§3.4: Base-OC 2048 -> 512, concat 1024 -> 512."""
    common = dict(in_channels=2048, num_classes=19, norm_cfg=dict(type='BN'))
    base = MODELS.build(dict(type='BaseOCHead', channels=512, **common))
    assert (base.reduce.conv.in_channels, base.reduce.conv.out_channels) == (2048, 512)
    assert base.reduce.conv.kernel_size == (3, 3)
    assert (base.fuse.conv.in_channels, base.fuse.conv.out_channels) == (1024, 512)
    sa = MODELS.build(dict(type='BaseOCHead', channels=512, attention='sa', **common)).ocp.attention
    assert (sa.key_channels, sa.value_channels, sa.out_channels) == (256, 256, 512)


def test_base_oc_sa_equals_explicit_reduce_attention_concat_fuse():
    head = build_head(dict(type='BaseOCHead', attention='sa'))
    x = torch.randn(2, 32, 5, 6)
    with torch.no_grad():
        reduced = head.reduce(x)
        context = explicit_sa(head.ocp.attention, reduced)
        expected = head.conv_seg(head.fuse(torch.cat([reduced, context], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_base_oc_isa_is_reduce_ocp_concat_fuse():
    head = build_head(dict(type='BaseOCHead', attention='isa', ocp_cfg=dict(groups=(2, 2))))
    assert head.ocp.attention.groups == (2, 2)
    x = torch.randn(2, 32, 6, 4)
    with torch.no_grad():
        reduced = head.reduce(x)
        expected = head.conv_seg(head.fuse(torch.cat([reduced, head.ocp(reduced)], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_sa2x_runs_the_ocp_on_the_pooled_map():
    head = build_head(dict(type='BaseOCHead', attention='sa', downsample=2))
    x = torch.randn(1, 32, 6, 8)
    with torch.no_grad():
        r = head.reduce(x)
        ctx = F.interpolate(explicit_sa(head.ocp.attention, F.avg_pool2d(r, 2)), size=(6, 8),
                            mode='bilinear', align_corners=False)
        expected = head.conv_seg(head.fuse(torch.cat([r, ctx], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_official_sa2x_equals_the_released_scale2_block():
    """Released Base-OC (SA) with scale 2: [SA on the max-pooled map, upsampled
    with align_corners=True; the input] -> 1x1 conv -> BN -> ReLU."""
    c = 8
    ref = nn.ModuleDict(dict(reduce=cbr(12, c, 3, bias=True),
                             sa=ReleasedSA(c, c // 2, c // 2, scale=2),
                             fuse=cbr(2 * c, c, bias=True), cls=nn.Conv2d(c, 5, 1)))
    ref = randomise(ref, 2)

    def released(x):
        x = ref['reduce'](x)
        return ref['cls'](ref['fuse'](torch.cat([ref['sa'](x), x], 1)))

    calibrate(ref, released, torch.randn(2, 12, 8, 8, dtype=torch.float64))
    head = build_official(dict(type='BaseOCHead', attention='sa', downsample=2))
    load_cbr(head.reduce, ref['reduce'])
    load_sa(head.ocp.attention, ref['sa'])
    load_cbr(head.fuse, ref['fuse'], in_perm=torch.cat([torch.arange(c, 2 * c),
                                                          torch.arange(c)]))
    head.conv_seg.load_state_dict(ref['cls'].state_dict())
    head = head.eval()
    for hw in ((7, 9), (8, 6)):
        x = torch.randn(2, 12, *hw, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(head([x]), released(x), rtol=1e-5, atol=1e-5)


def test_official_base_oc_isa_uses_the_released_isa_block():
    head = build_official(dict(type='BaseOCHead', attention='isa'))
    isa = head.ocp.attention
    assert (isa.variant, isa.padding, isa.groups) == ('official', 'symmetric', (8, 8))
    assert isa.global_relation.value_channels == 8 and isa.local_relation.out_norm
    paper = MODELS.build(dict(HEAD, in_channels=12, channels=8, type='BaseOCHead'))
    assert paper.ocp.attention.variant == 'paper'
    pinned = build_official(dict(type='BaseOCHead', ocp_cfg=dict(variant='paper')))
    assert pinned.ocp.attention.variant == 'paper'  # ocp_cfg has the last word


def test_small_maps_work():
    x = torch.randn(1, 32, 3, 3)
    for cfg in (dict(type='BaseOCHead', attention='isa'),  # 8x8 groups padded
                dict(type='BaseOCHead', attention='sa', downsample=2)):
        out = build_head(cfg)([x])
        assert out.shape == (1, 5, 3, 3) and torch.isfinite(out).all()


def test_trains():
    check_trains(dict(type='BaseOCHead'))


HEADS = {
    'base-isa': dict(type='BaseOCHead'),
    'base-isa-official': dict(type='BaseOCHead', variant='official'),
    'base-sa': dict(type='BaseOCHead', attention='sa'),
    'base-sa2x': dict(type='BaseOCHead', attention='sa', downsample=2),
    'base-sa2x-official': dict(type='BaseOCHead', attention='sa', downsample=2,
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
    (dict(type='BaseOCHead', attention='dense'), 'attention'),
    (dict(type='BaseOCHead', downsample=0), 'downsample'),
    (dict(type='BaseOCHead', downsample=1.5), 'downsample'),
    (dict(type='BaseOCHead', variant='mmseg'), 'variant'),
    (dict(type='BaseOCHead', ocp_cfg=dict(groups=(2.5, 2))), 'groups'),
])
def test_bad_arguments_name_themselves(cfg, word):
    with pytest.raises(ValueError, match=word):
        build_head(cfg)
