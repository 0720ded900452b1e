"""OCNet heads (Yuan et al., "OCNet: Object Context for Semantic Segmentation",
§3.3-3.4, Fig. 5, Appendix H) against slow references, and their
``variant='official'`` against re-implementations of the authors' released
blocks written from their description."""
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

import mmctx  # noqa: F401

pytestmark = pytest.mark.usefixtures('mmseg_scope')

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
    """OCNet Eqs. 10-11 with the N x N matrix formed by loops over queries."""
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


# --- variant='official': the authors' released blocks

nn = torch.nn


def _cbr(i, o, k=1, d=1, bias=False):
    """A released conv -> BN -> ReLU (its convs in front of BN sometimes carry a bias)."""
    return nn.Sequential(nn.Conv2d(i, o, k, padding=d * (k // 2), dilation=d, bias=bias),
                         nn.BatchNorm2d(o), nn.ReLU())


class _ReleasedSA(nn.Module):
    """The released dense SA block with ``scale``, from its description: the input
    max-pooled by ``scale`` (floor), theta / phi two 1x1 conv (bias) -> BN -> ReLU,
    delta and rho 1x1 convs with bias, logits scaled by d^-1/2, rho's output
    upsampled bilinearly with align_corners=True. Optional ``regions``: attention
    only inside s x s regions of floor(H / s) rows / columns, the remainder in
    the last ones (the released Pyramid-OC block), embeddings on the whole map."""

    def __init__(self, c, d, dv, scale=1, regions=1):
        super().__init__()
        self.d, self.scale, self.regions = d, scale, regions
        self.theta = nn.Sequential(_cbr(c, d, bias=True), _cbr(d, d, bias=True))
        self.phi = nn.Sequential(_cbr(c, d, bias=True), _cbr(d, d, bias=True))
        self.delta = nn.Conv2d(c, dv, 1)
        self.rho = nn.Conv2d(dv, c, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.scale > 1:
            x = F.max_pool2d(x, self.scale)
        q, k, v = self.theta(x), self.phi(x), self.delta(x)
        ctx = torch.zeros_like(v)
        s = self.regions
        hs, ws = x.shape[-2] // s, x.shape[-1] // s
        for i in range(s):
            for j in range(s):
                r = slice(i * hs, x.shape[-2] if i == s - 1 else (i + 1) * hs)
                c = slice(j * ws, x.shape[-1] if j == s - 1 else (j + 1) * ws)
                qq, kk, vv = (t[..., r, c].flatten(2) for t in (q, k, v))
                att = torch.softmax(torch.einsum('bdn,bdm->bnm', qq, kk) / self.d**0.5, -1)
                ctx[..., r, c] = torch.einsum('bnm,bcm->bcn', att, vv).reshape(
                    ctx[..., r, c].shape)
        z = self.rho(ctx)
        if self.scale > 1:
            z = F.interpolate(z, size=(h, w), mode='bilinear', align_corners=True)
        return z


def _randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * 0.3
            if m.bias is not None:
                m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.3
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 1 + 0.3 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.3 * torch.randn(m.bias.shape, generator=g)
            m.running_mean = 0.3 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
    return module.double().eval()


def _calibrate(ref, run, x):
    """Running statistics of every BN from one training-mode ``run(x)``, so the
    eval-mode ReLUs see centred inputs (no dead branch hides a mismatch)."""
    bns = [m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0
        bn.train()
    with torch.no_grad():
        run(x)
    for bn in bns:
        bn.eval()


def _load_cbr(cm, ref, in_perm=None):
    """A released conv(-bias) -> BN -> ReLU into an mmctx ConvModule; a conv bias
    in front of BN folds into the running mean (BN(Wx + b) with mean m is BN(Wx)
    with mean m - b)."""
    conv, bn = ref[0], ref[1]
    weight = conv.weight if in_perm is None else conv.weight[:, in_perm]
    cm.conv.weight.data.copy_(weight)
    cm.norm.load_state_dict(bn.state_dict())
    if conv.bias is not None:
        assert cm.conv.bias is None
        cm.norm.running_mean.data -= conv.bias


def _load_sa(sa, ref):
    for mine, theirs in ((sa.query, ref.theta), (sa.key, ref.phi)):
        _load_cbr(mine[0], theirs[0])
        _load_cbr(mine[1], theirs[1])
    sa.value.load_state_dict(ref.delta.state_dict())
    sa.out.load_state_dict(ref.rho.state_dict())


def _official(cfg):
    return MODELS.build(dict(HEAD, in_channels=12, channels=8, variant='official',
                             **cfg)).double()


def test_official_asp_oc_sa_equals_the_released_block():
    """The released ASP-OC (SA): 3x3 conv C_in -> 2c in front; OC branch 3x3 conv
    2c -> c, SA on the 2x max-pooled map (d = dv = c/2) upsampled back, BN-ReLU;
    1x1 and dilated 3x3 branches 2c -> c; 5c -> 2c fusion; classifier 2c -> K."""
    c, dil = 8, (1, 2, 3)
    ref = nn.ModuleDict(dict(
        pre=_cbr(12, 2 * c, 3, bias=True), reduce=_cbr(2 * c, c, 3, bias=True),
        sa=_ReleasedSA(c, c // 2, c // 2, scale=2),
        post=nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()),
        b1=_cbr(2 * c, c), b2=_cbr(2 * c, c, 3, dil[0]), b3=_cbr(2 * c, c, 3, dil[1]),
        b4=_cbr(2 * c, c, 3, dil[2]), fuse=_cbr(5 * c, 2 * c), cls=nn.Conv2d(2 * c, 5, 1)))
    ref = _randomise(ref, 0)

    def released(x):
        x = ref['pre'](x)
        ctx = ref['post'](ref['sa'](ref['reduce'](x)))
        outs = [ctx] + [ref[b](x) for b in ('b1', 'b2', 'b3', 'b4')]
        return ref['cls'](ref['fuse'](torch.cat(outs, 1)))

    _calibrate(ref, released, torch.randn(2, 12, 8, 8, dtype=torch.float64))
    with torch.no_grad():  # the OC branch is alive: it varies over the map
        x = torch.randn(2, 12, 7, 9, dtype=torch.float64)
        ctx = ref['post'](ref['sa'](ref['reduce'](ref['pre'](x))))
        assert ctx.std(dim=(-2, -1)).mean() > 0.05
    head = _official(dict(type='ASPOCHead', attention='sa', dilations=dil))
    _load_cbr(head.pre_reduce, ref['pre'])
    _load_cbr(head.context_reduce, ref['reduce'])
    _load_sa(head.ocp.attention, ref['sa'])
    head.context_post[0].load_state_dict(ref['post'][0].state_dict())
    for mine, name in zip(head.branches, ('b1', 'b2', 'b3', 'b4')):
        _load_cbr(mine, ref[name])
    _load_cbr(head.fuse, ref['fuse'])
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
    head = _official(dict(type='ASPOCHead', attention='isa', dilations=(1, 2, 3),
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


@pytest.mark.parametrize('hw', [(13, 14), (6, 7)])
def test_official_pyramid_oc_sa_equals_the_released_block(hw):
    """The released Pyramid-OC (SA): per scale s an SA (d = c/2, values of c
    channels) inside floor(H / s)-row regions (remainder last); the reduced map
    raised c -> 4c; concatenation [raised, Z^1, Z^2, Z^3, Z^6] and 8c -> c."""
    c, scales = 8, (1, 2, 3, 6)
    ref = nn.ModuleDict(dict(
        reduce=_cbr(12, c, 3, bias=True), up=_cbr(c, 4 * c, bias=True),
        fuse=_cbr(8 * c, c, bias=True), cls=nn.Conv2d(c, 5, 1),
        **{f's{s}': _ReleasedSA(c, c // 2, c, regions=s) for s in scales}))
    ref = _randomise(ref, 1)

    def released(x):
        x = ref['reduce'](x)
        cat = torch.cat([ref['up'](x)] + [ref[f's{s}'](x) for s in scales], 1)
        return ref['cls'](ref['fuse'](cat))

    _calibrate(ref, released, torch.randn(2, 12, 13, 14, dtype=torch.float64))
    head = _official(dict(type='PyramidOCHead', attention='sa', pyramid_scales=scales))
    _load_cbr(head.reduce, ref['reduce'])
    _load_cbr(head.expand, ref['up'])
    # mmctx concatenates [Z^1, .., Z^6, raised]: permute the fusion's inputs
    perm = torch.cat([torch.arange(4 * c, 8 * c), torch.arange(4 * c)])
    _load_cbr(head.fuse, ref['fuse'], in_perm=perm)
    for ocp, s in zip(head.ocps, scales):
        assert ocp.attention.value_channels == c
        _load_sa(ocp.attention, ref[f's{s}'])
    head.conv_seg.load_state_dict(ref['cls'].state_dict())
    head = head.eval()
    x = torch.randn(2, 12, *hw, dtype=torch.float64)
    with torch.no_grad():
        out = head([x])
        torch.testing.assert_close(out, released(x), rtol=1e-5, atol=1e-5)
        if hw[0] == 13:  # 13 / 6: round() borders 2, 2, 2, 2, 3, 2 vs floor 2 x 5 + 3
            head.region_split = 'round'
            assert (head([x]) - out).abs().max() > 1e-4


def test_official_sa2x_equals_the_released_scale2_block():
    """Released Base-OC (SA) with scale 2: [SA on the max-pooled map, upsampled
    with align_corners=True; the input] -> 1x1 conv -> BN -> ReLU."""
    c = 8
    ref = nn.ModuleDict(dict(reduce=_cbr(12, c, 3, bias=True),
                             sa=_ReleasedSA(c, c // 2, c // 2, scale=2),
                             fuse=_cbr(2 * c, c, bias=True), cls=nn.Conv2d(c, 5, 1)))
    ref = _randomise(ref, 2)

    def released(x):
        x = ref['reduce'](x)
        return ref['cls'](ref['fuse'](torch.cat([ref['sa'](x), x], 1)))

    _calibrate(ref, released, torch.randn(2, 12, 8, 8, dtype=torch.float64))
    head = _official(dict(type='BaseOCHead', attention='sa', downsample=2))
    _load_cbr(head.reduce, ref['reduce'])
    _load_sa(head.ocp.attention, ref['sa'])
    _load_cbr(head.fuse, ref['fuse'], in_perm=torch.cat([torch.arange(c, 2 * c),
                                                          torch.arange(c)]))
    head.conv_seg.load_state_dict(ref['cls'].state_dict())
    head = head.eval()
    for hw in ((7, 9), (8, 6)):
        x = torch.randn(2, 12, *hw, dtype=torch.float64)
        with torch.no_grad():
            torch.testing.assert_close(head([x]), released(x), rtol=1e-5, atol=1e-5)


def test_official_base_oc_isa_uses_the_released_isa_block():
    head = _official(dict(type='BaseOCHead', attention='isa'))
    isa = head.ocp.attention
    assert (isa.variant, isa.padding, isa.groups) == ('official', 'symmetric', (8, 8))
    assert isa.global_relation.value_channels == 8 and isa.local_relation.out_norm
    paper = MODELS.build(dict(HEAD, in_channels=12, channels=8, type='BaseOCHead'))
    assert paper.ocp.attention.variant == 'paper'
    pinned = _official(dict(type='BaseOCHead', ocp_cfg=dict(variant='paper')))
    assert pinned.ocp.attention.variant == 'paper'  # ocp_cfg has the last word


def test_region_bounds_round_half_to_even_and_floor_with_remainder():
    from mmctx.models.decode_heads.ocnet_heads import _region_bounds
    assert _region_bounds(97, 6, 'round') == [0, 16, 32, 48, 65, 81, 97]  # 16,16,16,17,16,16
    assert _region_bounds(97, 6, 'floor') == [0, 16, 32, 48, 64, 80, 97]  # 16 x 5 + 17
    for size in range(1, 80):
        for parts in (1, 2, 3, 6):
            assert _region_bounds(size, parts, 'round') == \
                [round(i * size / parts) for i in range(parts)] + [size]


# --- any batch, any map, traced at one size and run at another

HEADS = {
    'base-isa': dict(type='BaseOCHead'),
    'base-isa-official': dict(type='BaseOCHead', variant='official'),
    'base-sa': dict(type='BaseOCHead', attention='sa'),
    'base-sa2x': dict(type='BaseOCHead', attention='sa', downsample=2),
    'base-sa2x-official': dict(type='BaseOCHead', attention='sa', downsample=2,
                               variant='official'),
    'asp-isa': dict(type='ASPOCHead', dilations=(1, 2, 3)),
    'asp-isa-official': dict(type='ASPOCHead', dilations=(1, 2, 3), variant='official'),
    'asp-sa-official': dict(type='ASPOCHead', dilations=(1, 2, 3), attention='sa',
                            variant='official'),
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
@pytest.mark.parametrize('shape', [(0, 32, 5, 7), (0, 32, 1, 1), (2, 32, 1, 1), (2, 32, 1, 3)])
def test_heads_take_any_batch_and_map_forward_and_backward(name, shape):
    head = _head(HEADS[name]).train()
    x = torch.randn(*shape, requires_grad=True)
    out = head([x])
    assert out.shape == (shape[0], 5) + shape[2:] and torch.isfinite(out).all()
    (out * torch.linspace(-1, 2, out.numel()).reshape(out.shape)).sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    if shape[0] > 0:
        assert x.grad.abs().sum() > 0
    with torch.no_grad():
        assert head.eval()([x]).shape == out.shape


@pytest.mark.parametrize('name', sorted(SCALED))
def test_pyramid_heads_take_batch_zero(name):
    head = _head(SCALED[name]).train()
    x = torch.randn(0, 32, 7, 8, requires_grad=True)
    out = head([x])
    assert out.shape == (0, 5, 7, 8)
    out.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize('name', sorted(HEADS) + sorted(SCALED))
def test_heads_traced_at_one_size_run_at_others(name):
    head = _head({**HEADS, **SCALED}[name])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings
        traced = torch.jit.trace(head, ([torch.randn(2, 32, 12, 12)], ), check_trace=False)
    for hw in ((13, 17), (6, 9), (16, 16)):
        x = torch.randn(2, 32, *hw)
        with torch.no_grad():
            torch.testing.assert_close(traced([x]), head([x]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cfg,word', [
    (dict(type='BaseOCHead', downsample=1.5), 'downsample'),
    (dict(type='BaseOCHead', variant='mmseg'), 'variant'),
    (dict(type='BaseOCHead', ocp_cfg=dict(groups=(2.5, 2))), 'groups'),
    (dict(type='ASPOCHead', dilations=(12, 24.0, 36)), 'dilations'),
    (dict(type='ASPOCHead', dilations=()), 'dilations'),
    (dict(type='ASPOCHead', variant='official', pre_channels=0), 'pre_channels'),
    (dict(type='PyramidOCHead', pyramid_scales=(1, 2.5)), 'pyramid_scales'),
    (dict(type='PyramidOCHead', pyramid_scales=3), 'pyramid_scales'),
    (dict(type='PyramidOCHead', variant='released'), 'variant'),
])
def test_bad_numbers_name_the_argument(cfg, word):
    with pytest.raises(ValueError, match=word):
        _head(cfg)
