"""PyramidOCHead (Yuan et al., "OCNet: Object Context for Semantic Segmentation",
§3.4, Fig. 5c, Appendix H) against slow references, and its
``variant='official'`` against a re-implementation of the authors' released
block (``tests/ocnet_helpers.py``)."""


import pytest
import torch
import torch.nn as nn
from mmseg.registry import MODELS
from ocnet_helpers import (SHAPES, build_head, build_official, calibrate, cbr,
                           check_any_batch_and_map, check_traced_at_one_size_runs_at_others,
                           check_trains, explicit_sa, load_cbr, load_sa, randomise, ReleasedSA)

import mmctx  # noqa: F401

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_paper_channel_numbers():
    """§3.4: Pyramid-OC 512 -> 2048, 4096 -> 512, four OCP branches."""
    common = dict(in_channels=2048, num_classes=19, norm_cfg=dict(type='BN'))
    pyr = MODELS.build(dict(type='PyramidOCHead', channels=512, **common))
    assert len(pyr.ocps) == 4 and pyr.pyramid_scales == (1, 2, 3, 6)
    assert (pyr.expand.conv.in_channels, pyr.expand.conv.out_channels) == (512, 2048)
    assert (pyr.fuse.conv.in_channels, pyr.fuse.conv.out_channels) == (4096, 512)


def test_pyramid_oc_matches_region_by_region_reference():
    """Appendix H, Eqs. 27-29, on a 7x8 map: uneven 3x3 regions, one OCP per branch."""
    head = build_head(dict(type='PyramidOCHead', attention='sa', pyramid_scales=(1, 2, 3)))
    x = torch.randn(2, 32, 7, 8)
    with torch.no_grad():
        r = head.reduce(x)
        contexts = []
        for k, ocp in zip((1, 2, 3), head.ocps):
            rows = [round(i * 7 / k) for i in range(k + 1)]
            cols = [round(j * 8 / k) for j in range(k + 1)]
            z = torch.zeros_like(r)
            for i in range(k):
                for j in range(k):
                    region = r[..., rows[i]:rows[i + 1], cols[j]:cols[j + 1]]
                    z[..., rows[i]:rows[i + 1], cols[j]:cols[j + 1]] = explicit_sa(
                        ocp.attention, region)
            contexts.append(z)
        expected = head.conv_seg(head.fuse(torch.cat(contexts + [head.expand(r)], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_pyramid_oc_attention_does_not_cross_region_borders():
    head = build_head(dict(type='PyramidOCHead', attention='isa', pyramid_scales=(2, ),
                      ocp_cfg=dict(groups=(2, 2))))
    r = torch.randn(1, 16, 6, 6)
    r2 = r.clone()
    r2[..., :3, :3] += 1.0  # change the top-left region only
    with torch.no_grad():
        a = head._pyramid_context(r, 2, head.ocps[0])
        b = head._pyramid_context(r2, 2, head.ocps[0])
    assert not torch.allclose(a[..., :3, :3], b[..., :3, :3])
    assert torch.allclose(a[..., 3:, :], b[..., 3:, :])
    assert torch.allclose(a[..., :, 3:], b[..., :, 3:])


@pytest.mark.parametrize('size', [(4, 4), (5, 9), (9, 3)])
def test_pyramid_oc_too_small_map_names_head_and_sizes(size):
    head = build_head(dict(type='PyramidOCHead'))
    h, w = size
    with pytest.raises(ValueError, match=rf'PyramidOCHead.*6x6.*{h}x{w}'):
        head([torch.randn(1, 32, h, w)])


@pytest.mark.parametrize('hw', [(13, 14), (6, 7)])
def test_official_pyramid_oc_sa_equals_the_released_block(hw):
    """The released Pyramid-OC (SA): per scale s an SA (d = c/2, values of c
    channels) inside floor(H / s)-row regions (remainder last); the reduced map
    raised c -> 4c; concatenation [raised, Z^1, Z^2, Z^3, Z^6] and 8c -> c."""
    c, scales = 8, (1, 2, 3, 6)
    ref = nn.ModuleDict(dict(
        reduce=cbr(12, c, 3, bias=True), up=cbr(c, 4 * c, bias=True),
        fuse=cbr(8 * c, c, bias=True), cls=nn.Conv2d(c, 5, 1),
        **{f's{s}': ReleasedSA(c, c // 2, c, regions=s) for s in scales}))
    ref = randomise(ref, 1)

    def released(x):
        x = ref['reduce'](x)
        cat = torch.cat([ref['up'](x)] + [ref[f's{s}'](x) for s in scales], 1)
        return ref['cls'](ref['fuse'](cat))

    calibrate(ref, released, torch.randn(2, 12, 13, 14, dtype=torch.float64))
    head = build_official(dict(type='PyramidOCHead', attention='sa', pyramid_scales=scales))
    load_cbr(head.reduce, ref['reduce'])
    load_cbr(head.expand, ref['up'])
    # mmctx concatenates [Z^1, .., Z^6, raised]: permute the fusion's inputs
    perm = torch.cat([torch.arange(4 * c, 8 * c), torch.arange(4 * c)])
    load_cbr(head.fuse, ref['fuse'], in_perm=perm)
    for ocp, s in zip(head.ocps, scales):
        assert ocp.attention.value_channels == c
        load_sa(ocp.attention, ref[f's{s}'])
    head.conv_seg.load_state_dict(ref['cls'].state_dict())
    head = head.eval()
    x = torch.randn(2, 12, *hw, dtype=torch.float64)
    with torch.no_grad():
        out = head([x])
        torch.testing.assert_close(out, released(x), rtol=1e-5, atol=1e-5)
        if hw[0] == 13:  # 13 / 6: round() borders 2, 2, 2, 2, 3, 2 vs floor 2 x 5 + 3
            head.region_split = 'round'
            assert (head([x]) - out).abs().max() > 1e-4


def test_region_bounds_round_half_to_even_and_floor_with_remainder():
    from mmctx.models.decode_heads.pyramid_oc_head import _region_bounds
    assert _region_bounds(97, 6, 'round') == [0, 16, 32, 48, 65, 81, 97]  # 16,16,16,17,16,16
    assert _region_bounds(97, 6, 'floor') == [0, 16, 32, 48, 64, 80, 97]  # 16 x 5 + 17
    for size in range(1, 80):
        for parts in (1, 2, 3, 6):
            assert _region_bounds(size, parts, 'round') == \
                [round(i * size / parts) for i in range(parts)] + [size]


def test_small_maps_work_where_the_partition_allows():
    out = build_head(dict(type='PyramidOCHead', pyramid_scales=(1, 2, 3)))(
        [torch.randn(1, 32, 3, 3)])
    assert out.shape == (1, 5, 3, 3) and torch.isfinite(out).all()
    out = build_head(dict(type='PyramidOCHead'))([torch.randn(1, 32, 6, 6)])  # 1 px regions
    assert out.shape == (1, 5, 6, 6)


def test_trains():
    check_trains(dict(type='PyramidOCHead'))


HEADS = {
    'pyramid-isa-1': dict(type='PyramidOCHead', pyramid_scales=(1, )),
    'pyramid-sa-1-official': dict(type='PyramidOCHead', pyramid_scales=(1, ), attention='sa',
                                  variant='official'),
}
SCALED = {
    'pyramid-isa': dict(type='PyramidOCHead', ocp_cfg=dict(groups=(2, 2))),
    'pyramid-sa-official': dict(type='PyramidOCHead', attention='sa', variant='official'),
    'pyramid-isa-official': dict(type='PyramidOCHead', variant='official',
                                 ocp_cfg=dict(groups=(2, 2))),
}


@pytest.mark.parametrize('name', sorted(HEADS))
@pytest.mark.parametrize('shape', SHAPES)
def test_any_batch_and_map_forward_and_backward(name, shape):
    check_any_batch_and_map(HEADS[name], shape)


@pytest.mark.parametrize('name', sorted(SCALED))
def test_scaled_heads_take_batch_zero(name):
    head = build_head(SCALED[name]).train()
    x = torch.randn(0, 32, 7, 8, requires_grad=True)
    out = head([x])
    assert out.shape == (0, 5, 7, 8)
    out.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize('name', sorted(HEADS) + sorted(SCALED))
def test_traced_at_one_size_run_at_others(name):
    check_traced_at_one_size_runs_at_others({**HEADS, **SCALED}[name])


@pytest.mark.parametrize('cfg,word', [
    (dict(type='PyramidOCHead', pyramid_scales=(0, 2)), 'pyramid_scales'),
    (dict(type='PyramidOCHead', pyramid_scales=(1, 2.5)), 'pyramid_scales'),
    (dict(type='PyramidOCHead', pyramid_scales=3), 'pyramid_scales'),
    (dict(type='PyramidOCHead', variant='released'), 'variant'),
])
def test_bad_arguments_name_themselves(cfg, word):
    with pytest.raises(ValueError, match=word):
        build_head(cfg)
