"""EfficientNonLocal2d against slow references of its equations.

Levi & Ullman, "Efficient Coarse-to-Fine Non-Local Module for the Detection of
Small Objects" §3.2-3.3 (equation numbers are the paper's).
"""
import itertools

import numpy as np
import pytest
import torch
from mmengine.registry import MODELS
from scipy.fft import dctn

import mmctx  # noqa: F401  (registers the blocks)
from mmctx.analysis.memory import peak_memory
from mmctx.models.layers import EfficientNonLocal2d
from mmctx.models.layers.efficient_nonlocal import (dct_lowpass,
                                                    dct_position_matrix)
from layer_helpers import LargestTensor  # noqa: E402

C = 8


def build(**kwargs):
    cfg = dict(type='EfficientNonLocal2d', in_channels=C)
    cfg.update(kwargs)
    torch.manual_seed(0)
    module = MODELS.build(cfg)
    with torch.no_grad():  # larger than the 0.01 init: non-trivial attention
        for p in module.parameters():
            p.normal_(0, 0.4)
    return module


def twin(module, **changes):
    """The same weights in another configuration."""
    cfg = dict(in_channels=module.in_channels, mode=module.mode,
               similarity=module.similarity, phi_norm=module.phi_norm,
               theta_norm=module.theta_norm, pos_enc=module.pos_enc,
               pos_fusion=module.pos_fusion, impl=module.impl)
    cfg.update(changes)
    other = EfficientNonLocal2d(**cfg).to(next(module.parameters()).dtype)
    other.load_state_dict(module.state_dict())
    return other


# --------------------------------------------------------------------------
# slow references, written from the paper
def dense(conv, words):
    return words @ conv.weight[:, :, 0, 0].t() + conv.bias


def reference_dct_rows(h, w, size=9):
    """e(i): 2D cosine transform (scipy, orthonormal) of the one-hot image at
    position i, truncated to the lowest size x size frequencies (§3.3)."""
    rows = []
    for i in range(h * w):
        onehot = np.zeros((h, w))
        onehot[i // w, i % w] = 1.0
        rows.append(dctn(onehot, norm='ortho')[:size, :size].ravel())
    return torch.tensor(np.stack(rows))  # Ê, (HW, C_l)


def reference_position(kind, h, w):
    n = h * w
    if kind == 'dct':
        e_hat = reference_dct_rows(h, w)
        return e_hat @ e_hat.t()  # Eq. 8
    pos = torch.empty(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            l1 = abs(i // w - j // w) + abs(i % w - j % w)
            pos[i, j] = np.exp(-l1 / 50.0)
    return pos


def reference(module, x):
    """Eqs. 1-10 with the pairwise matrix formed entry by entry.

    The l1 term joins exp(θ^T φ) before the normaliser Z = Σ_j F (Eqs. 6,
    10); the DCT term joins the normalised similarity (Eq. 7: F g =
    [θ^T φ + L] g, the ENL's θ^T φ being normalised through φ).
    """
    b, c, h, w = x.shape
    n = h * w
    out = torch.empty_like(x)
    pos = None
    if module.pos_enc != 'none':
        pos = reference_position(module.pos_enc, h, w).to(x.dtype)
    fuse = (lambda a, l: a + l) if module.pos_fusion == 'add' else (
        lambda a, l: a * l)
    for k in range(b):
        words = x[k].reshape(c, n).t()
        theta, phi, g = (dense(module.theta, words), dense(module.phi, words),
                         dense(module.g, words))
        if module.theta_norm == 'tanh':
            theta = torch.tanh(theta)
        if module.phi_norm == 'softmax':  # each channel over the N positions
            phi = torch.exp(phi) / torch.exp(phi).sum(0, keepdim=True)
        elif module.phi_norm == '1/N':
            phi = phi / n
        f = torch.empty(n, n, dtype=x.dtype)
        for i in range(n):
            for j in range(n):
                s = torch.dot(theta[i], phi[j])
                f[i, j] = s if module.similarity == 'dot' else torch.exp(s)
        if module.pos_enc == 'l1':  # Eq. 6, inside Z
            f = fuse(f, pos)
        if module.similarity == 'exp':  # Z(x) = sum_j F(x_i, x_j), Eq. 10
            f = f / f.sum(1, keepdim=True)
        if module.pos_enc == 'dct':  # Eq. 7, on the normalised similarity
            f = fuse(f, pos)
        y = f @ g  # Eq. 1
        out[k] = x[k] + dense(module.conv_out, y).t().reshape(c, h, w)
    return out


# --------------------------------------------------------------------------
REFERENCE_CASES = [
    dict(mode='efficient'),
    dict(mode='efficient', phi_norm='1/N', theta_norm='tanh', pos_enc='dct'),
    dict(mode='efficient', phi_norm='none', pos_enc='dct'),
    dict(mode='explicit', phi_norm='softmax', pos_enc='l1', pos_fusion='mul'),
    dict(mode='explicit', phi_norm='1/N', pos_enc='dct', pos_fusion='mul'),
    dict(mode='explicit', similarity='exp'),
    dict(mode='explicit', similarity='exp', impl='explicit'),
    dict(mode='explicit', similarity='exp', pos_enc='l1', pos_fusion='add'),
    dict(mode='explicit', similarity='exp', pos_enc='l1', pos_fusion='mul'),
    dict(mode='explicit', similarity='exp', pos_enc='l1', pos_fusion='mul',
         impl='explicit'),
    dict(mode='explicit', similarity='exp', pos_enc='dct', pos_fusion='add'),
    dict(mode='explicit', similarity='exp', pos_enc='dct', pos_fusion='add',
         impl='explicit'),
    dict(mode='explicit', similarity='exp', pos_enc='dct', pos_fusion='mul'),
]


@pytest.mark.parametrize('hw', [(1, 1), (5, 7), (12, 10)])
@pytest.mark.parametrize('cfg', REFERENCE_CASES,
                         ids=lambda c: '-'.join(map(str, c.values())))
def test_matches_reference(cfg, hw):
    module = build(**cfg).double()
    x = torch.randn(2, C, *hw, dtype=torch.float64)
    out = module(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, reference(module, x))


def test_dct_filter_is_the_truncated_cosine_transform():
    # Eq. 8 against scipy's 2D DCT of one-hot images, with and without
    # truncation (an axis shorter than 9 keeps all its frequencies)
    for h, w in ((12, 10), (4, 13), (3, 3)):
        ref = reference_position('dct', h, w)
        torch.testing.assert_close(
            dct_position_matrix(h, w, dtype=torch.float64), ref)
        g = torch.randn(2, 3, h, w, dtype=torch.float64)
        torch.testing.assert_close(
            dct_lowpass(g), (g.flatten(2) @ ref.t()).view_as(g))
    # low-pass: constant maps pass unchanged; a full basis is the identity
    torch.testing.assert_close(dct_position_matrix(12, 10).sum(1),
                               torch.ones(120), atol=1e-5, rtol=0)
    torch.testing.assert_close(dct_position_matrix(9, 5), torch.eye(45),
                               atol=1e-5, rtol=0)
    # truncation is real on bigger maps: a proper low-rank filter
    assert torch.linalg.matrix_rank(dct_position_matrix(12, 10)) == 81


@pytest.mark.parametrize('phi_norm, theta_norm, pos_enc', list(
    itertools.product(['softmax', '1/N', 'none'], ['none', 'tanh'],
                      ['none', 'dct'])))
def test_efficient_equals_explicit(phi_norm, theta_norm, pos_enc):
    """Eq. 5 / Eq. 9 are a reordering of the explicit product (Eq. 4 / 7)."""
    eff = build(mode='efficient', phi_norm=phi_norm, theta_norm=theta_norm,
                pos_enc=pos_enc).double()
    exp = twin(eff, mode='explicit')
    x = torch.randn(2, C, 11, 13, dtype=torch.float64, requires_grad=True)
    (o1, gx1, gp1), (o2, gx2, gp2) = (_forward_backward(eff, x),
                                      _forward_backward(exp, x))
    torch.testing.assert_close(o1, o2)
    torch.testing.assert_close(gx1, gx2)
    for a, b in zip(gp1, gp2):
        torch.testing.assert_close(a, b)


def _forward_backward(module, x):
    x.grad = None
    out = module(x)
    (out * torch.cos(torch.arange(out.numel(), dtype=out.dtype)).view_as(
        out)).sum().backward()
    return (out.detach(), x.grad.clone(),
            [p.grad.clone() for p in module.parameters()])


@pytest.mark.parametrize('pos', [dict(), dict(pos_enc='l1', pos_fusion='mul'),
                                 dict(pos_enc='dct', pos_fusion='add')])
def test_fused_softmax_equals_explicit(pos):
    """The SDPA path of the Eq. 2 NL (l1-mul as a -l1/50 logit bias, the DCT
    term as Ê [Ê^T g] after the softmax)."""
    fused = build(mode='explicit', similarity='exp', impl='fused', **pos)
    explicit = twin(fused, impl='explicit')
    x = torch.randn(2, C, 9, 7, requires_grad=True)
    (o1, gx1, gp1), (o2, gx2, gp2) = (_forward_backward(fused, x),
                                      _forward_backward(explicit, x))
    torch.testing.assert_close(o1, o2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx1, gx2, rtol=1e-4, atol=1e-5)
    for a, b in zip(gp1, gp2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_auto_lets_resolve_impl_choose_and_equals_explicit(monkeypatch):
    """impl='auto' reaches softmax_attention as 'auto' (it was the explicit path,
    silently); the output equals the explicit path's."""
    import mmctx.models.layers.efficient_nonlocal as enl_module
    seen, real = [], enl_module.softmax_attention

    def spy(*args, **kwargs):
        seen.append(kwargs['impl'])
        return real(*args, **kwargs)

    monkeypatch.setattr(enl_module, 'softmax_attention', spy)
    auto = build(mode='explicit', similarity='exp', impl='auto')
    explicit = twin(auto, impl='explicit')
    x = torch.randn(2, C, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(auto(x), explicit(x), rtol=1e-4, atol=1e-5)
    assert seen == ['auto']


@pytest.mark.parametrize('cfg', [dict(mode='efficient', pos_enc='dct'),
                                 dict(mode='explicit', similarity='exp',
                                      pos_enc='l1', pos_fusion='mul')])
def test_get_attention_is_the_matrix_that_multiplies_g(cfg):
    module = build(**cfg).double()
    x = torch.randn(2, C, 6, 5, dtype=torch.float64)
    att = module.get_attention(x)
    assert att.shape == (2, 1, 30, 30)
    g = module.g(x).flatten(2)  # (B, C', N)
    y = (att[:, 0] @ g.transpose(1, 2)).transpose(1, 2).reshape(2, -1, 6, 5)
    torch.testing.assert_close(module(x), x + module.conv_out(y))
    if module.similarity == 'exp':
        torch.testing.assert_close(att.sum(-1),
                                   torch.ones(2, 1, 30, dtype=att.dtype))


@pytest.mark.parametrize('cfg', REFERENCE_CASES,
                         ids=lambda c: '-'.join(map(str, c.values())))
def test_gradients_reach_all_parameters(cfg):
    module = build(**cfg)
    x = torch.randn(2, C, 7, 6)
    (module(x)**2).mean().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('cfg', [dict(mode='efficient', pos_enc='dct'),
                                 dict(mode='efficient', theta_norm='tanh'),
                                 dict(mode='explicit', similarity='exp',
                                      pos_enc='dct'),
                                 dict(mode='explicit', similarity='exp',
                                      pos_enc='l1', pos_fusion='mul')])
def test_autocast_bf16(cfg):
    module = build(**cfg)
    x = torch.randn(2, C, 12, 11)
    ref = module(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.15)


def test_default_init_is_small_gaussian_without_norm_layers():
    torch.manual_seed(0)
    module = EfficientNonLocal2d(256)
    convs = [module.theta, module.phi, module.g, module.conv_out]
    for conv in convs:
        assert abs(conv.weight.std().item() - 0.01) < 1e-3
        assert torch.count_nonzero(conv.bias) == 0
    # no BN / affine layers inside (§4): the four 1x1 convs are all there is
    assert [m for m in module.modules() if m is not module] == convs
    assert module.inter_channels == 128


@pytest.mark.parametrize('kwargs, name', [
    (dict(reduction=3), 'reduction'),
    (dict(mode='fast'), 'mode'),
    (dict(phi_norm='sigmoid'), 'phi_norm'),
    (dict(theta_norm='softmax'), 'theta_norm'),
    (dict(pos_enc='sine'), 'pos_enc'),
    (dict(pos_fusion='concat'), 'pos_fusion'),
    (dict(pos_enc='l1'), 'pos_enc'),  # l1 is not low-rank: explicit only
    (dict(pos_enc='dct', pos_fusion='mul'), 'pos_fusion'),
    (dict(similarity='exp'), 'similarity'),
    (dict(mode='explicit', similarity='exp', phi_norm='softmax'), 'phi_norm'),
    (dict(dct_size=0), 'dct_size'),
    (dict(mode='explicit', impl='flash'), 'impl'),
    (dict(mode='explicit', pos_enc='l1', l1_scale=0), 'l1_scale'),
    # floats, negatives, zero channels: named, with the value
    (dict(in_channels=0), 'in_channels must be an int >= 1, got 0'),
    (dict(in_channels=-16), 'in_channels must be an int >= 1, got -16'),
    (dict(in_channels=16.0), r'in_channels must be an int >= 1, got 16\.0'),
    (dict(in_channels=True), 'in_channels must be an int >= 1, got True'),
    (dict(reduction=2.0), r'reduction=2\.0 must be a positive int dividing '
     'in_channels=16'),
    (dict(reduction=-2), 'reduction=-2 must'),
    (dict(reduction=0), 'reduction=0 must'),
    (dict(reduction=32), 'reduction=32 must'),
    (dict(dct_size=9.0), r'dct_size must be an int >= 1, got 9\.0'),
    (dict(dct_size=-9), 'dct_size must be an int >= 1, got -9'),
    (dict(l1_scale=-50), 'l1_scale must be a finite number > 0, got -50'),
    (dict(l1_scale='50'), "l1_scale must be a finite number > 0, got '50'"),
    (dict(l1_scale=float('inf')), 'l1_scale must .* got inf'),
    (dict(init_std=-0.01), r'init_std must be a finite number >= 0, got '
     r'-0\.01'),
    (dict(init_std=None), 'init_std must .* got None'),
])
def test_bad_arguments(kwargs, name):
    cfg = dict(type='EfficientNonLocal2d', in_channels=16)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=name):
        MODELS.build(cfg)


def test_bad_input_is_named():
    module = EfficientNonLocal2d(16)
    with pytest.raises(ValueError, match=r'expects a \(B, 16, H, W\) input, '
                       r'got \(2, 8, 5, 5\)'):
        module(torch.randn(2, 8, 5, 5))
    with pytest.raises(ValueError, match='expects .* got \\(16, 5, 5\\)'):
        module(torch.randn(16, 5, 5))
    with pytest.raises(ValueError, match='H, W >= 1, got a 0x5 map'):
        module(torch.randn(2, 16, 0, 5))


def test_efficient_never_forms_an_hw_by_hw_matrix():
    """96x96 map (N = 9216): the dense family member must hold an N x N
    float32 matrix (340 MB); ENL with the DCT term must not.

    Two measures: (1) every op output is seen by a dispatch mode, so the
    largest tensor any op creates (forward, autograd on) is exact; (2) the
    peak of live CPU tensor memory from torch.profiler's allocation events
    (mmctx.analysis.memory.peak_memory, exact for op outputs) for the
    efficient and the dense forward.
    """
    h = w = 96
    n = h * w
    eff = build(mode='efficient', pos_enc='dct')
    dense_nl = twin(eff, mode='explicit')
    x = torch.randn(1, C, h, w, requires_grad=True)

    with LargestTensor() as spy:
        eff(x).sum().backward()
    assert spy.largest < n * 64  # O(HW) tensors only (N x C at most)

    with torch.no_grad():
        peak_eff = peak_memory(lambda: eff(x))
        peak_dense = peak_memory(lambda: dense_nl(x))
    assert peak_dense >= n * n * 4  # the dense one does form F
    assert peak_eff < n * n * 4 / 100
    assert peak_eff < 100 * x.numel() * 4  # a few feature maps' worth


def test_resnet_plugin_and_any_map_size():
    from mmdet.registry import MODELS as DET_MODELS
    backbone = DET_MODELS.build(
        dict(type='mmdet.ResNet', depth=50, num_stages=4, out_indices=(2, 3),
             plugins=[dict(cfg=dict(type='EfficientNonLocal2d', pos_enc='dct'),
                           stages=(False, False, True, True),
                           position='after_conv3')]))
    block = backbone.layer3[0]
    plugin = getattr(block, block.after_conv3_plugin_names[0])
    assert isinstance(plugin, EfficientNonLocal2d)
    assert plugin.in_channels == 1024 and plugin.inter_channels == 512
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 48, 80))
    assert outs[1].shape == (1, 2048, 2, 3)


# --------------------------------------------------------------------------
# where the position term meets Z (Eq. 6 for l1, Eq. 7 for the DCT)
def _residual(module, x):
    with torch.no_grad():
        return module(x) - x


def _relative_change(a, b):
    return ((a - b).norm() / b.norm()).item()


def _inside_z_dct_add(module, x):
    """The rejected reading: the DCT L added to exp(s) before Z = Σ_j F."""
    b, c, h, w = x.shape
    theta, phi, g = module._embed(x)
    f = torch.exp(theta.transpose(1, 2) @ phi) + dct_position_matrix(
        h, w, dtype=x.dtype)
    y = (g.flatten(2) @ (f / f.sum(-1, keepdim=True)).transpose(1, 2))
    return module.conv_out(y.reshape(b, -1, h, w))


# minimum relative change of the block's residual o(y) when the position term
# is switched on. Measured over 5 seeds on 16x20 maps, paper init / larger
# weights: DCT (any form) >= 5.6 / 0.37; l1 add 0.032 / 0.081; l1 mul
# 0.073 / 0.020 (L = exp(-l1 / 50) varies little over 34 cells). The DCT L
# inside Z (the rejected reading) gave 0.017 / 0.0006 for "cos add".
POSITION_CASES = [
    (dict(mode='efficient', pos_enc='dct'), 0.25),
    (dict(mode='explicit', similarity='exp', pos_enc='dct',
          pos_fusion='add'), 0.25),
    (dict(mode='explicit', similarity='exp', pos_enc='dct',
          pos_fusion='mul'), 0.25),
    (dict(mode='explicit', similarity='exp', pos_enc='l1',
          pos_fusion='add'), 0.015),
    (dict(mode='explicit', similarity='exp', pos_enc='l1',
          pos_fusion='mul'), 0.015),
]


@pytest.mark.parametrize('init', ['paper', 'trained'])
@pytest.mark.parametrize('cfg, threshold', POSITION_CASES,
                         ids=lambda c: '-'.join(map(str, c.values()))
                         if isinstance(c, dict) else str(c))
def test_position_term_changes_the_output(cfg, threshold, init):
    """Each position row differs measurably from its no-position twin."""
    torch.manual_seed(0)
    module = EfficientNonLocal2d(C, **cfg).double()
    if init == 'trained':  # larger weights: a peaked, non-uniform softmax
        module = build(**cfg).double()
    plain = twin(module, pos_enc='none', pos_fusion='add')
    x = torch.randn(2, C, 16, 20, dtype=torch.float64)
    change = _relative_change(_residual(module, x), _residual(plain, x))
    assert change > threshold, change


def test_dct_inside_z_would_be_swamped():
    """Control: with the DCT L inside Z (Σ_j e^s ≈ HW) "cos add" would be
    almost its no-position twin - the reading the docstring rejects."""
    module = build(mode='explicit', similarity='exp', pos_enc='dct').double()
    plain = twin(module, pos_enc='none')
    x = torch.randn(2, C, 16, 20, dtype=torch.float64)
    with torch.no_grad():
        inside = _inside_z_dct_add(module, x)
    assert _relative_change(inside, _residual(plain, x)) < 0.005
    assert _relative_change(_residual(module, x), _residual(plain, x)) > 0.25


@pytest.mark.parametrize('cfg', [dict(mode='efficient', pos_enc='dct'),
                                 dict(mode='explicit', pos_enc='dct'),
                                 dict(mode='explicit', similarity='exp',
                                      pos_enc='dct'),
                                 dict(mode='explicit', similarity='exp',
                                      pos_enc='dct', impl='explicit')])
def test_dct_term_is_one_function_in_every_form(cfg):
    """Eq. 9's Ê [Ê^T g] is what switching the DCT term on adds, in the ENL
    and in the explicit NL alike (the same position module, Eq. 7)."""
    module = build(**cfg).double()
    plain = twin(module, pos_enc='none')
    x = torch.randn(2, C, 11, 13, dtype=torch.float64)
    with torch.no_grad():
        g = module.g(x)
        expected = torch.nn.functional.conv2d(
            dct_lowpass(g), module.conv_out.weight)  # o(.) without its bias
        torch.testing.assert_close(module(x) - plain(x), expected)
    assert expected.norm() > 0.1 * _residual(plain, x).norm()


EXP_POSITIONS = [dict(), dict(pos_enc='l1', pos_fusion='add'),
                 dict(pos_enc='l1', pos_fusion='mul'),
                 dict(pos_enc='dct', pos_fusion='add'),
                 dict(pos_enc='dct', pos_fusion='mul')]


@pytest.mark.parametrize('logit_std', [3.0, 30.0, 300.0])
@pytest.mark.parametrize('pos', EXP_POSITIONS,
                         ids=lambda c: '-'.join(c.values()) or 'none')
def test_normaliser_is_positive(pos, logit_std):
    """Z' (Z with the row max factored out) lies in [1, HW] for every row and
    F / Z is a distribution over j, at any logit scale."""
    module = EfficientNonLocal2d(C, mode='explicit', similarity='exp', **pos)
    h, w = 12, 14
    torch.manual_seed(0)
    logits = torch.randn(2, h * w, h * w) * logit_std
    att, z = module._normalised_similarity(logits, h, w)
    assert z.min() >= 1 and z.max() <= h * w
    assert (att >= 0).all() and torch.isfinite(att).all()
    torch.testing.assert_close(att.sum(-1), torch.ones(2, h * w))


def test_dct_inside_z_would_reach_zero():
    """Control: Σ_j e^s L_dct, the normaliser of "cos mul" had the DCT L
    stayed inside Z, is <= 0 for a large share of the rows at logit std 3
    (the DCT basis has negative lobes); mmctx never forms it."""
    h, w = 12, 14
    torch.manual_seed(0)
    logits = torch.randn(4, h * w, h * w) * 3
    z = (torch.exp(logits) * dct_position_matrix(h, w)).sum(-1)
    assert (z <= 0).float().mean() > 0.1


# --------------------------------------------------------------------------
# every option combination on every shape, traced and exported
def _all_options():
    cases = []
    for mode, sim, phi_norm, theta_norm, pos_enc, fusion, impl in \
            itertools.product(('efficient', 'explicit'), ('dot', 'exp'),
                              ('softmax', '1/N', 'none'), ('none', 'tanh'),
                              ('none', 'dct', 'l1'), ('add', 'mul'),
                              ('fused', 'explicit')):
        cfg = dict(mode=mode, similarity=sim, phi_norm=phi_norm,
                   theta_norm=theta_norm, pos_enc=pos_enc, pos_fusion=fusion,
                   impl=impl)
        if pos_enc == 'none' and fusion == 'mul':
            continue  # the same block as 'add'
        try:
            EfficientNonLocal2d(C, **cfg)
        except ValueError:
            continue
        cases.append(cfg)
    return cases


ALL_OPTIONS = _all_options()


def test_option_count():
    # efficient: 3 phi x 2 theta x (none, dct-add) x 2 impl = 24; explicit dot:
    # 3 x 2 x 5 x 2 = 60; explicit exp: 5 x 2 = 10
    assert len(ALL_OPTIONS) == 94


@pytest.mark.parametrize('cfg', ALL_OPTIONS,
                         ids=lambda c: '-'.join(map(str, c.values())))
def test_any_batch_and_map_size(cfg):
    """Batch 0 and maps from 1x1, forward and backward."""
    module = build(**cfg)
    for b, h, w in ((0, 5, 6), (0, 1, 1), (1, 1, 1), (3, 1, 1), (2, 1, 7),
                    (2, 6, 1), (1, 2, 3)):
        module.zero_grad()
        x = torch.randn(b, C, h, w, requires_grad=True)
        out = module(x)
        assert out.shape == (b, C, h, w)
        (out * out).sum().backward()
        assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
        for name, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            if b == 0:
                assert (p.grad == 0).all(), name
        if b > 0:  # the block acts: the residual is not zero
            assert (out - x).abs().max() > 0


TRACE_CASES = [
    dict(mode='efficient', pos_enc='dct'),
    dict(mode='efficient', phi_norm='1/N', theta_norm='tanh', pos_enc='dct'),
    dict(mode='explicit', pos_enc='dct', pos_fusion='mul'),
    dict(mode='explicit', phi_norm='1/N', pos_enc='l1', pos_fusion='add'),
    dict(mode='explicit', similarity='exp'),
    dict(mode='explicit', similarity='exp', pos_enc='l1', pos_fusion='mul'),
    dict(mode='explicit', similarity='exp', pos_enc='l1', pos_fusion='add'),
    dict(mode='explicit', similarity='exp', pos_enc='dct'),
    dict(mode='explicit', similarity='exp', pos_enc='dct', impl='explicit'),
    dict(mode='explicit', similarity='exp', pos_enc='dct', pos_fusion='mul'),
]


@pytest.mark.parametrize('cfg', TRACE_CASES,
                         ids=lambda c: '-'.join(map(str, c.values())))
def test_traced_at_one_size_runs_at_another(cfg):
    """torch.jit.trace at 8x8 (below the 9x9 DCT truncation), run at 16x16
    and 12x20 (above it): equal to eager within 1e-5."""
    module = build(**cfg).eval()
    with torch.no_grad():
        traced = torch.jit.trace(module, torch.randn(2, C, 8, 8))
        for shape in ((2, C, 16, 16), (3, C, 12, 20), (1, C, 8, 8),
                      (1, C, 3, 5)):
            x = torch.randn(shape)
            ref = module(x)
            torch.testing.assert_close(traced(x), ref, rtol=0, atol=1e-5)
            assert (ref - x).abs().max() > 1e-3  # the block contributes


@pytest.mark.parametrize('cfg', TRACE_CASES,
                         ids=lambda c: '-'.join(map(str, c.values())))
def test_onnx_export_runs_at_other_sizes(cfg, tmp_path):
    """ONNX (opset 17, dynamic batch, H, W) exported at 8x8, run by
    onnxruntime at 16x16, 12x20 and 1x1: equal to eager (1e-5)."""
    pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    module = build(**cfg).eval()
    path = str(tmp_path / 'enl.onnx')
    kwargs = dict(opset_version=17, input_names=['x'], output_names=['y'],
                  dynamic_axes={'x': {0: 'b', 2: 'h', 3: 'w'},
                                'y': {0: 'b', 2: 'h', 3: 'w'}})
    with torch.no_grad():
        try:
            torch.onnx.export(module, (torch.randn(2, C, 8, 8), ), path,
                              dynamo=False, **kwargs)
        except TypeError:  # a torch without the dynamo switch
            torch.onnx.export(module, (torch.randn(2, C, 8, 8), ), path,
                              **kwargs)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for shape in ((2, C, 16, 16), (1, C, 12, 20), (2, C, 8, 8), (1, C, 1, 1)):
        x = torch.randn(shape)
        out = session.run(None, {'x': x.numpy()})[0]
        with torch.no_grad():
            ref = module(x)
        # rtol: onnxruntime's float32 kernels round differently on the
        # outputs of ~100 of the un-normalised 'dot' rows
        torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-5,
                                   atol=1e-5)
