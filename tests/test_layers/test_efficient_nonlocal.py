"""EfficientNonLocal2d (seed 003 §3.2-3.3) against slow references of its equations."""
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
    """Eqs. 1-10 with the pairwise matrix formed entry by entry."""
    b, c, h, w = x.shape
    n = h * w
    out = torch.empty_like(x)
    pos = None
    if module.pos_enc != 'none':
        pos = reference_position(module.pos_enc, h, w).to(x.dtype)
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
        if pos is not None:  # Eq. 6 / Eq. 7
            f = f + pos if module.pos_fusion == 'add' else f * pos
        if module.similarity == 'exp':  # Z(x) = sum_j F(x_i, x_j), Eq. 10
            f = f / f.sum(1, keepdim=True)
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


@pytest.mark.parametrize('pos', [dict(), dict(pos_enc='l1', pos_fusion='mul')])
def test_fused_softmax_equals_explicit(pos):
    """The SDPA path of the Eq. 2 NL (l1-mul as a -l1/50 logit bias)."""
    fused = build(mode='explicit', similarity='exp', impl='fused', **pos)
    explicit = twin(fused, impl='explicit')
    x = torch.randn(2, C, 9, 7, requires_grad=True)
    (o1, gx1, gp1), (o2, gx2, gp2) = (_forward_backward(fused, x),
                                      _forward_backward(explicit, x))
    torch.testing.assert_close(o1, o2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx1, gx2, rtol=1e-4, atol=1e-5)
    for a, b in zip(gp1, gp2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


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
])
def test_bad_arguments(kwargs, name):
    cfg = dict(type='EfficientNonLocal2d', in_channels=16)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=name):
        MODELS.build(cfg)


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
