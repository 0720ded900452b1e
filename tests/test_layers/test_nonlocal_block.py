"""NonLocal2dBlock / SimplifiedNonLocal2d vs. seed 001 Eq. 1 and Eq. 3."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

import mmctx  # noqa: F401  (registration)
from mmctx.models.layers import NonLocal2dBlock, SimplifiedNonLocal2d
from layer_helpers import LargestTensor, randomise  # noqa: E402

MODES = ('embedded_gaussian', 'gaussian', 'dot_product', 'concatenation')


def _conv1x1(conv, v):
    """Apply a 1x1 conv to one (C,) vector."""
    w = conv.weight[:, :, 0, 0]
    out = w @ v
    return out + conv.bias if conv.bias is not None else out


def _ref_nonlocal(m, x):
    """Eq. 1 with explicit loops over query i and key j."""
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    for n in range(b):
        xn = x[n:n + 1]
        g = m._pool(m.g(xn))[0].flatten(1)  # (Ci, Nk)
        keys_x = m._pool(xn)[0].flatten(1)
        if m.mode != 'gaussian':
            th = m.theta(xn)[0].flatten(1)
            ph = m._pool(m.phi(xn))[0].flatten(1)
        xf = xn[0].flatten(1)
        nk = g.shape[1]
        ys = []
        for i in range(h * w):
            f = []
            for j in range(nk):
                if m.mode == 'embedded_gaussian':
                    s = (th[:, i] @ ph[:, j]) / (th.shape[0]**0.5)
                elif m.mode == 'gaussian':
                    s = (xf[:, i] @ keys_x[:, j]) / (c**0.5)
                elif m.mode == 'dot_product':
                    s = th[:, i] @ ph[:, j]
                else:
                    s = F.relu(m.concat_project.weight.flatten()
                               @ torch.cat([th[:, i], ph[:, j]]))
                f.append(s)
            f = torch.stack(f)
            if m.mode in ('embedded_gaussian', 'gaussian'):
                f = f.exp() / f.exp().sum()  # C(x) = sum_j f
            else:
                f = f / nk  # C(x) = N
            ys.append((g * f).sum(1))
        y = torch.stack(ys, 1).reshape(-1, h, w)
        out[n] = x[n] + m.conv_out(y[None])[0]
    return out


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('sub_sample', [False, True])
def test_nonlocal_matches_eq1(mode, sub_sample):
    m = randomise(NonLocal2dBlock(6, mode=mode, sub_sample=sub_sample,
                                  impl='explicit'), 1).eval()
    x = torch.randn(2, 6, 4, 5)
    with torch.no_grad():
        ref = _ref_nonlocal(m, x)
        out = m(x)
        m.impl = 'fused'
        out_fused = m(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out_fused, ref, rtol=1e-4, atol=1e-4)
    attn = m.get_attention(x)
    nk = 4 if sub_sample else 20
    assert attn.shape == (2, 1, 20, nk)
    if mode in ('embedded_gaussian', 'gaussian'):
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, 1, 20))


def _twins(mode, sub_sample, c=8):
    """The same randomised block with impl='fused' and impl='explicit'."""
    fused = randomise(NonLocal2dBlock(c, mode=mode, sub_sample=sub_sample), 1)
    explicit = NonLocal2dBlock(c, mode=mode, sub_sample=sub_sample,
                               impl='explicit')
    explicit.load_state_dict(fused.state_dict())
    return fused, explicit


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('sub_sample', [False, True])
def test_fused_equals_explicit_forward_and_gradients(mode, sub_sample):
    results = []
    for m in _twins(mode, sub_sample):
        x = torch.randn(2, 8, 5, 6, generator=torch.Generator().manual_seed(4),
                        requires_grad=True)
        out = m(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append([out.detach(), x.grad] +
                       [p.grad for p in m.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('mode', MODES)
def test_fused_never_forms_the_nxn_matrix(mode):
    """48x48 map, N = 2304: the explicit path forms the N x N matrix (5.3M
    entries); every fused path's largest tensor, forward and backward, is a
    few feature maps (N x C), not N x N."""
    n = 48 * 48
    x = torch.randn(1, 8, 48, 48, requires_grad=True)
    largest = {}
    for m in _twins(mode, False):
        with LargestTensor() as spy:
            m(x).sum().backward()
        largest[m.impl] = spy.largest
    assert largest['explicit'] >= n * n
    assert largest['fused'] <= 8 * n


def test_zero_init_identity_and_gradients():
    x = torch.randn(2, 8, 3, 5)
    for mode in MODES:
        m = NonLocal2dBlock(8, mode=mode)
        torch.testing.assert_close(m(x), x)  # W_z zero-init -> identity
        randomise(m, 1)
        m(x).square().sum().backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, (mode, name)
    bn = NonLocal2dBlock(8, norm_cfg=dict(type='BN'))
    assert torch.all(bn.conv_out.norm.weight == 0)


@pytest.mark.parametrize('hw', [(1, 1), (3, 5), (7, 2)])
def test_odd_and_tiny_maps(hw):
    x = torch.randn(1, 4, *hw)
    for mode in MODES:
        for sub in (False, True):
            m = randomise(NonLocal2dBlock(4, mode=mode, sub_sample=sub), 1)
            assert m(x).shape == x.shape
    assert SimplifiedNonLocal2d(4)(x).shape == x.shape


def test_bf16_autocast_cpu():
    x = torch.randn(1, 8, 4, 4)
    for mode in MODES:
        m = randomise(NonLocal2dBlock(8, mode=mode, sub_sample=True), 1)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            y = m(x)
        assert y.shape == x.shape and torch.isfinite(y.float()).all()
    s = randomise(SimplifiedNonLocal2d(8), 1)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert torch.isfinite(s(x).float()).all()


def test_simplified_matches_eq3():
    m = randomise(SimplifiedNonLocal2d(5), 1).eval()
    x = torch.randn(2, 5, 3, 4)
    ref = torch.empty_like(x)
    with torch.no_grad():
        for n in range(2):
            xf = x[n].flatten(1)  # (C, N)
            logits = torch.stack([_conv1x1(m.conv_mask, xf[:, j])[0]
                                  for j in range(12)])
            a = logits.exp() / logits.exp().sum()
            ctx = sum(a[j] * xf[:, j] for j in range(12))
            z = _conv1x1(m.conv_value, ctx)
            ref[n] = x[n] + z[:, None, None]
        torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)
        assert m.get_attention(x).shape == (2, 1, 1, 12)
    m2 = SimplifiedNonLocal2d(5)
    torch.testing.assert_close(m2(x), x)
    randomise(m2, 1)(x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in m2.parameters())


def test_param_count_seed001():
    # NL block (Embedded Gaussian, C/2 inner): theta, phi, g: C x C/2 each,
    # W_z: C/2 x C -> 2 C^2 weights (+ biases 3 C/2 + C).
    c = 1024
    m = NonLocal2dBlock(c)
    n = sum(p.numel() for p in m.parameters())
    assert n == 2 * c * c + 3 * (c // 2) + c
    # SNL (Eq. 3): W_k C x 1 and W_v C x C.
    s = SimplifiedNonLocal2d(c)
    assert sum(p.numel() for p in s.parameters()) == c * c + c + c
    # Seed 001 Table 8(a), one block at c4 of ResNet-50 (C = 1024):
    # '+1NL' 27.66M - 25.56M = 2.10M, '+1SNL' 26.61M - 25.56M = 1.05M.
    assert abs(n / 1e6 - 2.10) <= 0.005
    assert abs(sum(p.numel() for p in s.parameters()) / 1e6 - 1.05) <= 0.005


def test_registry_and_bad_args():
    m = MODELS.build(dict(type='NonLocal2dBlock', in_channels=8,
                          mode='dot_product'))
    assert isinstance(m, NonLocal2dBlock) and m._abbr_ == 'nl'
    assert isinstance(MODELS.build(dict(type='SimplifiedNonLocal2d',
                                        in_channels=4)), SimplifiedNonLocal2d)
    with pytest.raises(ValueError, match='mode'):
        NonLocal2dBlock(8, mode='cosine')
    with pytest.raises(ValueError, match='reduction'):
        NonLocal2dBlock(8, reduction=16)
    with pytest.raises(ValueError, match='impl'):
        NonLocal2dBlock(8, impl='flash')
    with pytest.raises(ValueError, match='in_channels'):
        NonLocal2dBlock(0)
    with pytest.raises(ValueError, match='in_channels'):
        SimplifiedNonLocal2d(-1)


def test_resnet_plugin():
    from mmdet.models.backbones import ResNet
    net = ResNet(
        depth=50, base_channels=8, out_indices=(2, ),
        plugins=[dict(cfg=dict(type='NonLocal2dBlock', sub_sample=True),
                      stages=(False, False, True, False),
                      position='after_conv3')])
    nls = [m for m in net.modules() if isinstance(m, NonLocal2dBlock)]
    assert len(nls) == 6 and {m.in_channels for m in nls} == {128}
    nls[0].conv_out.conv.weight.data.normal_()
    out = net(torch.randn(2, 3, 64, 64))[0]
    assert out.shape == (2, 128, 4, 4)
    out.sum().backward()
    assert nls[0].theta.weight.grad.abs().sum() > 0
