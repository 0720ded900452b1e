"""OCNet heads (seed 004 §3.3-3.4, Fig. 5, Appendix H) against slow references."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmctx  # noqa: F401

HEAD = dict(in_channels=32, channels=16, num_classes=5, in_index=0,
            norm_cfg=dict(type='BN'), dropout_ratio=0.0)


def _head(cfg, seed=0):
    torch.manual_seed(seed)
    head = MODELS.build(dict(HEAD, **cfg))
    # non-trivial BN statistics, so that eval-mode BN is not an identity
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return head.eval()


def _explicit_sa(sa, x):
    """Seed 004 Eqs. 10-11 with the N x N matrix formed by loops over queries."""
    b, _, h, w = x.shape
    q = sa.query(x).flatten(2)  # theta, (B, d, N)
    k = sa.key(x).flatten(2)  # phi
    v = sa.value(x).flatten(2)  # delta
    d = q.shape[1]
    out = torch.zeros_like(v)
    for i in range(h * w):
        weights = torch.softmax((q[:, :, i:i + 1] * k).sum(1) / d**0.5, dim=-1)  # (B, N)
        out[:, :, i] = (weights[:, None] * v).sum(-1)
    return sa.out(out.reshape(b, -1, h, w))  # rho


def test_base_oc_sa_equals_explicit_reduce_attention_concat_fuse():
    head = _head(dict(type='BaseOCHead', attention='sa'))
    x = torch.randn(2, 32, 5, 6)
    with torch.no_grad():
        reduced = head.reduce(x)
        context = _explicit_sa(head.ocp.attention, reduced)
        expected = head.conv_seg(head.fuse(torch.cat([reduced, context], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_base_oc_isa_is_reduce_ocp_concat_fuse():
    head = _head(dict(type='BaseOCHead', attention='isa', ocp_cfg=dict(groups=(2, 2))))
    assert head.ocp.attention.groups == (2, 2)
    x = torch.randn(2, 32, 6, 4)
    with torch.no_grad():
        reduced = head.reduce(x)
        expected = head.conv_seg(head.fuse(torch.cat([reduced, head.ocp(reduced)], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_paper_channel_numbers():
    """§3.4: Base-OC 2048 -> 512, concat 1024 -> 512; Pyramid-OC 512 -> 2048,
    4096 -> 512; ASP-OC five 256-channel branches, 1280 -> 256."""
    common = dict(in_channels=2048, num_classes=19, norm_cfg=dict(type='BN'))
    base = MODELS.build(dict(type='BaseOCHead', channels=512, **common))
    assert (base.reduce.conv.in_channels, base.reduce.conv.out_channels) == (2048, 512)
    assert base.reduce.conv.kernel_size == (3, 3)
    assert (base.fuse.conv.in_channels, base.fuse.conv.out_channels) == (1024, 512)
    sa = MODELS.build(dict(type='BaseOCHead', channels=512, attention='sa', **common)).ocp.attention
    assert (sa.key_channels, sa.value_channels, sa.out_channels) == (256, 256, 512)

    pyr = MODELS.build(dict(type='PyramidOCHead', channels=512, **common))
    assert len(pyr.ocps) == 4 and pyr.pyramid_scales == (1, 2, 3, 6)
    assert (pyr.expand.conv.in_channels, pyr.expand.conv.out_channels) == (512, 2048)
    assert (pyr.fuse.conv.in_channels, pyr.fuse.conv.out_channels) == (4096, 512)

    asp = MODELS.build(dict(type='ASPOCHead', channels=256, **common))
    reduce = asp.context_reduce.conv
    assert (reduce.in_channels, reduce.out_channels) == (2048, 256)
    assert [b.conv.dilation[0] for b in asp.branches[1:]] == [12, 24, 36]
    assert asp.branches[0].conv.kernel_size == (1, 1)
    assert (asp.fuse.conv.in_channels, asp.fuse.conv.out_channels) == (1280, 256)


def test_pyramid_oc_matches_region_by_region_reference():
    """Appendix H, Eqs. 27-29, on a 7x8 map: uneven 3x3 regions, one OCP per branch."""
    head = _head(dict(type='PyramidOCHead', attention='sa', pyramid_scales=(1, 2, 3)))
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
                    z[..., rows[i]:rows[i + 1], cols[j]:cols[j + 1]] = _explicit_sa(
                        ocp.attention, region)
            contexts.append(z)
        expected = head.conv_seg(head.fuse(torch.cat(contexts + [head.expand(r)], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_pyramid_oc_attention_does_not_cross_region_borders():
    head = _head(dict(type='PyramidOCHead', attention='isa', pyramid_scales=(2, ),
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
    head = _head(dict(type='PyramidOCHead'))
    h, w = size
    with pytest.raises(ValueError, match=rf'PyramidOCHead.*6x6.*{h}x{w}'):
        head([torch.randn(1, 32, h, w)])


def test_small_maps_work_where_the_partition_allows():
    x = torch.randn(1, 32, 3, 3)
    for cfg in (dict(type='BaseOCHead', attention='isa'),  # 8x8 groups padded
                dict(type='BaseOCHead', attention='sa', downsample=2),
                dict(type='ASPOCHead', attention='isa', dilations=(12, 24, 36)),
                dict(type='PyramidOCHead', pyramid_scales=(1, 2, 3))):
        out = _head(cfg)([x])
        assert out.shape == (1, 5, 3, 3) and torch.isfinite(out).all()
    out = _head(dict(type='PyramidOCHead'))([torch.randn(1, 32, 6, 6)])  # 6x6 regions of 1 px
    assert out.shape == (1, 5, 6, 6)


def test_asp_oc_branches():
    head = _head(dict(type='ASPOCHead', attention='isa', dilations=(2, 3, 4),
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


def test_sa2x_runs_the_ocp_on_the_pooled_map():
    head = _head(dict(type='BaseOCHead', attention='sa', downsample=2))
    x = torch.randn(1, 32, 6, 8)
    with torch.no_grad():
        r = head.reduce(x)
        ctx = F.interpolate(_explicit_sa(head.ocp.attention, F.avg_pool2d(r, 2)), size=(6, 8),
                            mode='bilinear', align_corners=False)
        expected = head.conv_seg(head.fuse(torch.cat([r, ctx], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match='attention'):
        _head(dict(type='BaseOCHead', attention='dense'))
    with pytest.raises(ValueError, match='downsample'):
        _head(dict(type='BaseOCHead', downsample=0))
    with pytest.raises(ValueError, match='pyramid_scales'):
        _head(dict(type='PyramidOCHead', pyramid_scales=(0, 2)))


def test_heads_train_backward():
    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    for cfg in (dict(type='BaseOCHead'), dict(type='PyramidOCHead'),
                dict(type='ASPOCHead', dilations=(1, 2, 3))):
        head = _head(cfg).train()
        head([x]).square().mean().backward()
        grads = [p.grad for p in head.parameters() if p.requires_grad]
        assert all(g is not None for g in grads), cfg['type']
