"""SA / ISA / OCP of OCNet (Yuan et al., "OCNet: Object Context for Semantic
Segmentation", §3.2) against slow references of Eqs. 9-21, and the ISA block of
the authors' released code (``variant='official'``) against a re-implementation
of it written from its description."""
import warnings

import pytest
import torch
from mmengine.registry import MODELS

import mmctx  # noqa: F401
from mmctx.analysis.memory import peak_memory
from mmctx.analysis.peers import ReleasedSelfAttention


def _build(cfg):
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    # random conv weights and biases; BN affine stays (1, 0) so no ReLU is dead
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.weight, std=0.3)
            if mod.bias is not None:
                torch.nn.init.normal_(mod.bias, std=0.3)
    return m.eval()


def _sa_reference(sa, x):
    """Eqs. 10-11 per image: W = softmax(theta phi^T / sqrt(d)), Z = rho(W delta)."""
    b, c, h, w = x.shape
    theta = sa.query(x).flatten(2)  # (B, d, N)
    phi = sa.key(x).flatten(2)
    delta = sa.value(x).flatten(2)
    d = theta.shape[1]
    out = []
    for i in range(b):
        n = h * w
        logits = torch.empty(n, n)
        for a in range(n):
            for k in range(n):
                logits[a, k] = (theta[i, :, a] * phi[i, :, k]).sum() / d**0.5
        weights = logits.softmax(-1)
        out.append((delta[i] @ weights.t()).reshape(-1, h, w))
    return sa.out(torch.stack(out))


def _isa_reference(isa, x):
    """Eq. 9 with explicit block-sparse masks in the original position order.

    As in Algorithm 1, row i = q_h * P_h + p_h (columns alike): global groups
    share (p_h, p_w) = (i mod P_h, j mod P_w), local groups share
    (q_h, q_w) = (i // P_h, j // P_w). Each stage is SA over all N positions
    with the logits of pairs outside a group masked out (W^g, W^l of Eq. 16);
    a single-relation ``order`` applies only its stage. The map is zero-padded
    at the bottom / right, or by half at the top / left for 'symmetric'.
    """
    ph, pw = isa.groups
    h, w = x.shape[-2:]
    hp, wp = -(-h // ph) * ph, -(-w // pw) * pw
    top, left = ((hp - h) // 2, (wp - w) // 2) if isa.padding == 'symmetric' else (0, 0)
    y = torch.nn.functional.pad(x, (left, wp - w - left, top, hp - h - top))
    rows = torch.arange(hp).repeat_interleave(wp)
    cols = torch.arange(wp).repeat(hp)
    same = {
        'global': ((rows[:, None] % ph == rows[None] % ph) &
                   (cols[:, None] % pw == cols[None] % pw)),
        'local': ((rows[:, None] // ph == rows[None] // ph) &
                  (cols[:, None] // pw == cols[None] // pw)),
    }
    for stage in isa.order.split('_'):
        sa = isa.global_relation if stage == 'global' else isa.local_relation
        theta, phi = sa.query(y).flatten(2), sa.key(y).flatten(2)
        delta = sa.value(y).flatten(2)
        logits = torch.einsum('bdn,bdm->bnm', theta, phi) / theta.shape[1]**0.5
        logits = logits.masked_fill(~same[stage], float('-inf'))
        z = torch.einsum('bnm,bdm->bdn', logits.softmax(-1), delta)
        y = sa.out(z.reshape(z.shape[0], -1, hp, wp))
    return y[..., top:top + h, left:left + w]


@pytest.mark.parametrize('impl', ['fused', 'explicit'])
@pytest.mark.parametrize('hw', [(1, 1), (3, 5), (4, 4)])
def test_sa_matches_eq10_11(impl, hw):
    sa = _build(dict(type='SelfAttention2d', in_channels=6, impl=impl))
    x = torch.randn(2, 6, *hw)
    with torch.no_grad():
        assert torch.allclose(sa(x), _sa_reference(sa, x), atol=1e-4)
        assert sa.get_attention(x).shape == (2, 1, hw[0] * hw[1], hw[0] * hw[1])


@pytest.mark.parametrize('variant', ['paper', 'official'])
@pytest.mark.parametrize('order', ['global_local', 'local_global'])
@pytest.mark.parametrize('hw,groups', [((8, 6), (4, 3)), ((7, 5), (2, 2)),
                                       ((1, 1), (8, 8)), ((6, 9), (3, 3))])
def test_isa_equals_block_sparse_dense_attention(variant, order, hw, groups):
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4,
                      groups=groups, order=order, variant=variant))
    x = torch.randn(2, 4, *hw)
    with torch.no_grad():
        out = isa(x)
        assert out.shape == x.shape
        assert torch.allclose(out, _isa_reference(isa, x), atol=1e-4)


def test_isa_composite_relation_is_a_stochastic_matrix_restricted_by_eq9():
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4,
                      groups=(2, 2)))
    x = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        w = isa.get_attention(x)[0, 0]
    assert w.shape == (16, 16)
    assert torch.allclose(w.sum(-1), torch.ones(16), atol=1e-5)
    # global then local: every position reaches every other (dense relation)
    assert (w > 0).all()
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4,
                      groups=(2, 2), order='local_global'))
    with torch.no_grad():
        assert (isa.get_attention(x)[0, 0] > 0).all()


@pytest.mark.parametrize('attention', ['sa', 'isa', 'isa-official'])
def test_fused_equals_explicit_with_gradients_and_all_params_learn(attention):
    extra = dict(groups=(2, 2)) if attention.startswith('isa') else {}
    if attention == 'isa-official':  # values of C channels: wider than the keys
        attention, extra = 'isa', dict(extra, variant='official')
    outs, grads = [], []
    for impl in ('fused', 'explicit'):
        m = _build(dict(type='ObjectContextPooling', in_channels=4,
                        attention=attention, impl=impl, **extra)).train()
        x = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(1),
                        requires_grad=True)
        out = m(x)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        outs.append(out.detach())
        grads.append(x.grad)
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.allclose(outs[0], outs[1], atol=1e-4)
    assert torch.allclose(grads[0], grads[1], atol=1e-4)


def test_bf16_autocast_runs():
    m = MODELS.build(dict(type='InterlacedSparseSelfAttention', in_channels=8,
                          groups=(2, 2))).eval()
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad():
        out = m(torch.randn(1, 8, 5, 7))
    assert out.shape == (1, 8, 5, 7) and torch.isfinite(out.float()).all()


@pytest.mark.parametrize('cfg,word', [
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, order='zigzag'), 'order'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=(0, 2)), 'groups'),
    (dict(type='ObjectContextPooling', in_channels=4, attention='ccnet'), 'attention'),
    (dict(type='SelfAttention2d', in_channels=4, impl='flash'), 'impl'),
])
def test_bad_arguments_name_themselves(cfg, word):
    with pytest.raises(ValueError, match=word):
        MODELS.build(cfg)


def test_isa_never_forms_the_dense_matrix_at_96x96():
    x = torch.randn(1, 16, 96, 96)
    sa = MODELS.build(dict(type='SelfAttention2d', in_channels=16)).eval()
    isa = MODELS.build(dict(type='InterlacedSparseSelfAttention', in_channels=16,
                            impl='explicit')).eval()
    dense_bytes = (96 * 96)**2 * 4
    with torch.no_grad():
        sa.impl = 'explicit'
        sa_peak = peak_memory(lambda: sa(x))
        isa_peak = peak_memory(lambda: isa(x))
    assert sa_peak >= dense_bytes
    # ISA's largest relation is (HW/64)^2 per group: 1/64 of the dense one
    assert isa_peak < dense_bytes / 20


# --- single-relation ISA (OCNet §4.3: "only global relation" / "only local relation")

@pytest.mark.parametrize('variant', ['paper', 'official'])
@pytest.mark.parametrize('order', ['global', 'local'])
@pytest.mark.parametrize('hw,groups', [((8, 6), (4, 3)), ((7, 5), (2, 2)), ((1, 1), (8, 8))])
def test_isa_single_relation_equals_its_masked_dense_attention(variant, order, hw, groups):
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=groups,
                      order=order, variant=variant))
    other = 'local' if order == 'global' else 'global'
    assert isa.relation(other) is None and isa.stages == (order, )  # only one SA built
    x = torch.randn(2, 4, *hw)
    with torch.no_grad():
        out = isa(x)
        assert out.shape == x.shape
        assert torch.allclose(out, _isa_reference(isa, x), atol=1e-4)


@pytest.mark.parametrize('order', ['global', 'local'])
def test_isa_single_relation_mixes_only_inside_its_groups(order):
    """A perturbation at (0, 0) reaches, in one stage, exactly the positions of
    its group: rows / columns of equal offset mod (P_h, P_w) for 'global', the
    top-left P_h x P_w block for 'local' (the two-stage ISA reaches all)."""
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=(2, 3),
                      order=order))
    x = torch.randn(1, 4, 6, 6)
    x2 = x.clone()
    x2[..., 0, 0] += 1.0
    with torch.no_grad():
        changed = (isa(x2) - isa(x)).abs().amax(1)[0] > 1e-6
        w = isa.get_attention(x)[0, 0]
    i, j = torch.meshgrid(torch.arange(6), torch.arange(6), indexing='ij')
    if order == 'global':
        group = (i % 2 == 0) & (j % 3 == 0)
    else:
        group = (i < 2) & (j < 3)
    assert torch.equal(changed, group)
    assert torch.allclose(w.sum(-1), torch.ones(36), atol=1e-5)
    assert torch.equal(w[0] > 0, group.flatten())
    both = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=(2, 3)))
    with torch.no_grad():
        assert ((both(x2) - both(x)).abs().amax(1) > 1e-6).all()


# --- the ISA block of the authors' released code (variant='official')

# one relation of the released block (theta / phi / delta / rho), kept once in the
# package beside the peers it is benchmarked against
_ReleasedRelation = ReleasedSelfAttention


def _released_isa(glob, loc, x, ph, pw):
    """The released block's forward by slicing: pad pad // 2 at the top / left
    (the rest at the bottom / right); the global relation on every strided
    sub-grid x[i::P_h, j::P_w], then the local relation on every P_h x P_w
    tile; crop."""
    h, w = x.shape[-2:]
    dh, dw = (-h) % ph, (-w) % pw
    top, left = dh // 2, dw // 2
    y = torch.nn.functional.pad(x, (left, dw - left, top, dh - top))
    hp, wp = y.shape[-2:]
    z = torch.empty_like(y)
    for i in range(ph):
        for j in range(pw):
            z[..., i::ph, j::pw] = glob(y[..., i::ph, j::pw])
    out = torch.empty_like(z)
    for i in range(0, hp, ph):
        for j in range(0, wp, pw):
            out[..., i:i + ph, j:j + pw] = loc(z[..., i:i + ph, j:j + pw])
    return out[..., top:top + h, left:left + w]


def _randomise_released(module, seed):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * 0.4
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = 1 + 0.3 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.3 * torch.randn(m.bias.shape, generator=g)
            m.running_mean = 0.3 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
    return module.eval()


def _calibrate_bn(modules, run):
    """Running statistics of every BN from one training-mode ``run()`` (so that
    the eval-mode ReLUs see centred inputs and the output is not a constant)."""
    bns = [m for mod in modules for m in mod.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0
        bn.train()
    with torch.no_grad():
        run()
    for bn in bns:
        bn.eval()


def _load_released_relation(sa, ref):
    """Copy a :class:`_ReleasedRelation` into an mmctx official SelfAttention2d."""
    pairs = [(sa.query[0], ref.theta[0], ref.theta[1]), (sa.query[1], ref.theta[3], ref.theta[4]),
             (sa.key[0], ref.phi[0], ref.phi[1]), (sa.key[1], ref.phi[3], ref.phi[4]),
             (sa.out, ref.rho[0], ref.rho[1])]
    for cm, conv, bn in pairs:
        assert cm.conv.bias is None
        cm.conv.weight.data.copy_(conv.weight)
        cm.norm.load_state_dict(bn.state_dict())
    assert sa.value.bias is None
    sa.value.weight.data.copy_(ref.delta.weight)


@pytest.mark.parametrize('impl', ['fused', 'explicit'])
@pytest.mark.parametrize('hw,groups', [((8, 8), (4, 4)), ((7, 10), (4, 4)), ((9, 5), (2, 3)),
                                       ((5, 6), (4, 4))])
def test_official_isa_equals_the_released_block(impl, hw, groups):
    c, d = 8, 4
    glob = _randomise_released(_ReleasedRelation(c, d), 1).double()
    loc = _randomise_released(_ReleasedRelation(c, d), 2).double()
    x = torch.randn(2, c, *hw, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    _calibrate_bn([glob, loc], lambda: _released_isa(glob, loc, x, *groups))
    isa = MODELS.build(dict(type='InterlacedSparseSelfAttention', in_channels=c, groups=groups,
                            variant='official', impl=impl)).double()
    assert isa.padding == 'symmetric'
    for sa in (isa.global_relation, isa.local_relation):
        assert (sa.key_channels, sa.value_channels, sa.out_channels) == (d, c, c)
    _load_released_relation(isa.global_relation, glob)
    _load_released_relation(isa.local_relation, loc)
    isa = isa.eval()
    assert sum(p.numel() for p in isa.parameters()) == \
        sum(p.numel() for p in glob.parameters()) + sum(p.numel() for p in loc.parameters())
    with torch.no_grad():
        expected = _released_isa(glob, loc, x, *groups)
        assert expected.std(dim=(-2, -1)).mean() > 0.05  # not a constant map
        torch.testing.assert_close(isa(x), expected, rtol=1e-5, atol=1e-5)
        if hw == (7, 10):  # 2 columns of padding: 1 left (official), 0 (paper)
            isa.padding = 'end'
            assert (isa(x) - expected).abs().max() > 1e-3


def test_official_variant_options_can_be_overridden():
    isa = MODELS.build(dict(type='InterlacedSparseSelfAttention', in_channels=8,
                            variant='official', value_channels=4, padding='end'))
    assert isa.padding == 'end' and isa.global_relation.value_channels == 4
    assert isa.global_relation.out_norm and isa.global_relation.value.bias is None
    paper = MODELS.build(dict(type='InterlacedSparseSelfAttention', in_channels=8))
    assert paper.padding == 'end' and paper.local_relation.value_channels == 4
    assert isinstance(paper.local_relation.out, torch.nn.Conv2d)


@pytest.mark.parametrize('order', ['global_local', 'local_global', 'global', 'local'])
def test_official_residual_isa_refuses_a_dead_zero_start(order):
    """rho = conv-BN-ReLU can only output 0 with the ReLU shut (no gradient):
    a zero-initialised residual block would never learn, so it is refused;
    without zero_init it is X + OCP(X) and rho learns."""
    cfg = dict(type='ResidualObjectContext', in_channels=8, groups=(2, 2), order=order,
               variant='official')
    with pytest.raises(ValueError, match='zero_init'):
        MODELS.build(cfg)
    block = MODELS.build(dict(cfg, zero_init=False))
    ocp = MODELS.build(dict(cfg, type='ObjectContextPooling', in_channels=8))
    ocp.load_state_dict(block.state_dict())
    x = torch.randn(2, 8, 5, 6, requires_grad=True)
    y = block(x)
    torch.testing.assert_close(y, x + ocp(x))
    y.square().sum().backward()
    assert block.last_projection().norm.weight.grad.abs().sum() > 0


# --- any batch, any map, traced at one size and run at another

BLOCKS = {
    'sa': dict(type='SelfAttention2d'),
    'sa-explicit': dict(type='SelfAttention2d', impl='explicit'),
    'sa-out-norm': dict(type='SelfAttention2d', out_norm=True, value_bias=False),
    'ocp-sa': dict(type='ObjectContextPooling', attention='sa'),
    'residual-isa': dict(type='ResidualObjectContext', groups=(3, 2), zero_init=False),
}
for _order in ('global_local', 'local_global', 'global', 'local'):
    for _variant in ('paper', 'official'):
        for _impl in ('fused', 'explicit'):
            BLOCKS[f'isa-{_order}-{_variant}-{_impl}'] = dict(
                type='InterlacedSparseSelfAttention', groups=(3, 2), order=_order,
                variant=_variant, impl=_impl)


def _block(name):
    return _build(dict(BLOCKS[name], in_channels=6))


@pytest.mark.parametrize('name', sorted(BLOCKS))
@pytest.mark.parametrize('shape', [(0, 6, 5, 7), (0, 6, 1, 1), (2, 6, 1, 1), (1, 6, 1, 3)])
def test_any_batch_any_map_forward_and_backward(name, shape):
    block = _block(name).train()
    x = torch.randn(*shape, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    (out * torch.linspace(-1, 2, out.numel()).reshape(out.shape)).sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    if shape[0] > 0:
        assert x.grad.abs().sum() > 0
    for p in block.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    with torch.no_grad():
        assert block.eval()(x).shape == x.shape


@pytest.mark.parametrize('name', sorted(BLOCKS))
def test_traced_at_one_size_runs_at_others(name):
    """Traced at 6x6 (divisible by the (3, 2) groups: no padding), run where
    padding is needed on one side or both, and the reverse."""
    block = _block(name).eval()
    for traced_at, run_at in (((6, 6), [(7, 5), (12, 10), (1, 1)]), ((7, 5), [(6, 6), (10, 9)])):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # TracerWarnings
            traced = torch.jit.trace(block, torch.randn(2, 6, *traced_at), check_trace=False)
        for hw in run_at:
            x = torch.randn(2, 6, *hw)
            with torch.no_grad():
                torch.testing.assert_close(traced(x), block(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cfg,word', [
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=(2.5, 2)), 'groups'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=(2, 2, 2)), 'groups'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=8), 'groups'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=(True, 2)), 'groups'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, variant='mmseg'), 'variant'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, padding='left'), 'padding'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, out_channels=0), 'out_channels'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4.0), 'in_channels'),
    (dict(type='SelfAttention2d', in_channels=4, key_channels=0), 'key_channels'),
    (dict(type='SelfAttention2d', in_channels=4, key_channels=-4), 'key_channels'),
    (dict(type='SelfAttention2d', in_channels=4, value_channels=2.0), 'value_channels'),
    (dict(type='SelfAttention2d', in_channels=0), 'in_channels'),
    (dict(type='SelfAttention2d', in_channels='8'), 'in_channels'),
    (dict(type='ObjectContextPooling', in_channels=4, attention='isa', groups=(2.5, 2)),
     'groups'),
    (dict(type='SelfAttention2d', in_channels=4, norm_cfg=dict(type='Foo')), 'norm_cfg'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, norm_cfg='BN'), 'norm_cfg'),
])
def test_bad_numbers_name_the_argument_at_build_time(cfg, word):
    with pytest.raises(ValueError, match=rf'{word}\b.*(must be|type)'):
        MODELS.build(cfg)


@pytest.mark.parametrize('norm_cfg', [dict(type='GN', num_groups=2), dict(type='SyncBN'), None])
def test_known_norms_build(norm_cfg):
    sa = MODELS.build(dict(type='SelfAttention2d', in_channels=8, norm_cfg=norm_cfg))
    assert len(sa.query[0]._modules) == (2 if norm_cfg is None else 3)  # conv (+ norm), act
    if norm_cfg is None or norm_cfg['type'] != 'SyncBN':
        assert sa(torch.randn(2, 8, 3, 3)).shape == (2, 8, 3, 3)


def test_none_means_default_channels():
    sa = MODELS.build(dict(type='SelfAttention2d', in_channels=8, key_channels=None,
                           value_channels=None))
    assert (sa.key_channels, sa.value_channels, sa.out_channels) == (4, 4, 8)


def test_regroup_is_merge_then_split_in_one_copy():
    from mmctx.models.layers.object_context import (_from_global_groups, _from_local_groups,
                                                    _global_groups, _local_groups, _regroup)
    x = torch.randn(2, 3, 6, 8)
    g = _global_groups(x, 3, 2)  # (2*3*2, 3, 2, 4)
    assert torch.equal(_regroup(g, 2, 3, 2), _local_groups(_from_global_groups(g, 2, 3, 2), 3, 2))
    loc = _local_groups(x, 3, 2)  # (2*2*4, 3, 3, 2)
    assert torch.equal(_regroup(loc, 2, 2, 4),
                       _global_groups(_from_local_groups(loc, 2, 6, 8), 3, 2))


def test_ocp_sa_takes_the_variant_argument():
    """The released dense SA is the paper's: variant is accepted and checked."""
    a = _build(dict(type='ObjectContextPooling', in_channels=8, attention='sa'))
    b = _build(dict(type='ObjectContextPooling', in_channels=8, attention='sa',
                    variant='official'))
    x = torch.randn(1, 8, 3, 4)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    with pytest.raises(ValueError, match='variant'):
        MODELS.build(dict(type='ObjectContextPooling', in_channels=8, attention='sa',
                          variant='mmseg'))


def test_isa_pads_only_when_the_groups_do_not_divide_the_map(monkeypatch):
    """No F.pad copy of the map where H and W divide by (P_h, P_w)."""
    pad = torch.nn.functional.pad
    calls = []

    def counting_pad(x, amounts, *args, **kwargs):
        calls.append(tuple(amounts))
        return pad(x, amounts, *args, **kwargs)

    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=8, groups=(2, 4)))
    monkeypatch.setattr(torch.nn.functional, 'pad', counting_pad)
    with torch.no_grad():
        isa(torch.randn(1, 8, 6, 8))
        assert calls == []
        isa(torch.randn(1, 8, 5, 8))
        assert calls == [(0, 0, 0, 1)]


@pytest.mark.parametrize('variant', ['paper', 'official'])
def test_isa_groups_are_channels_last_and_the_tokens_are_views(variant):
    """Split and regroup write (G, C, Q_h, Q_w) with channels innermost, each in one
    copy; the relation's 1x1 convs keep that layout, so q, k, v reach the attention
    as views with unit stride on the channels (no copy there)."""
    from mmctx.models.layers.object_context import (_global_groups, _local_groups,
                                                    _regroup)
    x = torch.randn(2, 6, 8, 12)
    b, c, h, w = x.shape
    ph, pw = 2, 3
    g = _global_groups(x, ph, pw)
    assert g.is_contiguous(memory_format=torch.channels_last)
    for i in range(ph):  # group (n, i, j) holds x[n, :, i::ph, j::pw]
        for j in range(pw):
            assert torch.equal(g[i * pw + j], x[0, :, i::ph, j::pw])
    loc = _local_groups(x, ph, pw)
    assert loc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(loc[1], x[0, :, :ph, pw:2 * pw])
    assert _regroup(g, b, ph, pw).is_contiguous(memory_format=torch.channels_last)
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=c, groups=(ph, pw),
                      variant=variant))
    with torch.no_grad():
        for t in isa.global_relation._qkv(g):
            assert t.stride(-1) == 1
            assert t.untyped_storage().nbytes() == t.numel() * t.element_size()


@pytest.mark.parametrize('hw', [33, 40])  # padded to 40 for the 8 x 8 groups, or not
def test_isa_forward_holds_no_more_than_mmseg_isahead(hw):
    """Each intermediate (the padded map, the groups, a stage's output; q / k /
    v and the attention output in each relation) is freed once the next is
    made, as in mmseg's ISAHead: ISA's forward peak stays at or below the
    peak of mmseg's two relations with its regroup (0.82x here; it was 1.13x
    unpadded, 1.32x padded). C = 512, the papers' width: at C = 256 'auto'
    takes the fused path, whose zero-padded q / k cost 1.15x for speed."""
    from mmctx.analysis.peers import COMPARISONS
    cmp = next(c for c in COMPARISONS if c.peer == 'mmseg ISAHead relations')
    ours, theirs = cmp.build_ours(512).eval(), cmp.build_peer(512).eval()
    x = torch.randn(1, 512, hw, hw)
    with torch.no_grad():
        peaks = [peak_memory(lambda m=m: m(x)) for m in (ours, theirs)]
    assert peaks[0] <= peaks[1], peaks
