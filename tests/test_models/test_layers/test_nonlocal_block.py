"""NonLocal2dBlock / SimplifiedNonLocal2d vs. Eq. 1 and Eq. 3 of Cao et al.,
"Global Context Networks"."""
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
                    s = th[:, i] @ ph[:, j]
                    s = s / th.shape[0]**0.5 if m.use_scale else s
                elif m.mode == 'gaussian':
                    s = xf[:, i] @ keys_x[:, j]
                    s = s / c**0.5 if m.use_scale else s
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
@pytest.mark.parametrize('use_scale', [None, True, False])
def test_nonlocal_matches_eq1(mode, sub_sample, use_scale):
    m = randomise(NonLocal2dBlock(6, mode=mode, sub_sample=sub_sample,
                                  use_scale=use_scale, impl='explicit'), 1).eval()
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
    fused = randomise(NonLocal2dBlock(c, mode=mode, sub_sample=sub_sample,
                                      impl='fused'), 1)
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


def test_param_count_gcnet():
    # NL block (Embedded Gaussian, C/2 inner): theta, phi, g: C x C/2 each,
    # W_z: C/2 x C -> 2 C^2 weights (+ biases 3 C/2 + C).
    c = 1024
    m = NonLocal2dBlock(c)
    n = sum(p.numel() for p in m.parameters())
    assert n == 2 * c * c + 3 * (c // 2) + c
    # SNL (Eq. 3): W_k C x 1 and W_v C x C.
    s = SimplifiedNonLocal2d(c)
    assert sum(p.numel() for p in s.parameters()) == c * c + c + c
    # GCNet Table 8(a), one block at c4 of ResNet-50 (C = 1024):
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


# ---------------------------------------------------------------------------
# The released formulation (the GCNet authors' mmdetection plugin, continued
# as mmcv's NonLocal2d), re-implemented here from its description:
# g / theta / phi are 1x1 convs to C/r channels; with sub_sample a 2x2
# max-pool (floor mode) follows g and phi (Gaussian: phi is the pool of x
# itself); pairwise weights are
#   embedded Gaussian: softmax(theta^T phi / sqrt(C/r))   (use_scale=True)
#   Gaussian:          softmax(x^T x_pooled)               (never scaled)
#   dot product:       theta^T phi / N_k
#   concatenation:     ReLU(w^T [theta_i; phi_j]) / N_k
# and the output is x + conv_out(pairwise @ g).
def _conv(weight, bias, x):
    return torch.einsum('oc,bchw->bohw', weight[:, :, 0, 0], x) + (
        0 if bias is None else bias[None, :, None, None])


def _released_nonlocal(state, x, mode, sub_sample, use_scale=True):
    b, c, h, w = x.shape

    def pool(t):
        return F.max_pool2d(t, 2) if sub_sample else t

    g = pool(_conv(state['g.weight'], state['g.bias'], x)).flatten(2)  # (B, Ci, Nk)
    ci = g.shape[1]
    if mode == 'gaussian':
        theta, phi = x.flatten(2), pool(x).flatten(2)
    else:
        theta = _conv(state['theta.weight'], state['theta.bias'], x).flatten(2)
        phi = pool(_conv(state['phi.weight'], state['phi.bias'], x)).flatten(2)
    if mode == 'concatenation':
        wc = state['concat_project.weight'].flatten()
        pair = F.relu((wc[:ci] @ theta)[:, :, None] + (wc[ci:] @ phi)[:, None, :])
        pair = pair / phi.shape[-1]
    else:
        pair = theta.transpose(1, 2) @ phi  # (B, N, Nk)
        if mode == 'embedded_gaussian':
            pair = (pair / ci**0.5 if use_scale else pair).softmax(-1)
        elif mode == 'gaussian':
            pair = pair.softmax(-1)
        else:
            pair = pair / pair.shape[-1]
    y = (pair @ g.transpose(1, 2)).transpose(1, 2).reshape(b, ci, h, w)
    return x + _conv(state['conv_out.conv.weight'], state['conv_out.conv.bias'], y)


def test_use_scale_default_follows_the_released_code():
    assert NonLocal2dBlock(8).use_scale is True  # embedded Gaussian: / sqrt(C/r)
    assert NonLocal2dBlock(8, mode='gaussian').use_scale is False  # never scaled
    assert NonLocal2dBlock(8, mode='gaussian', use_scale=True).use_scale is True
    assert NonLocal2dBlock(8, use_scale=False).use_scale is False
    with pytest.raises(ValueError, match="use_scale .* got 'yes'"):
        NonLocal2dBlock(8, use_scale='yes')


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('sub_sample', [False, True])
@pytest.mark.parametrize('impl', ['fused', 'explicit'])
def test_default_matches_released_formulation(mode, sub_sample, impl):
    """Randomised weights of the default block loaded into the released
    formulation (above) give the same output within 1e-5, float64."""
    m = randomise(NonLocal2dBlock(8, mode=mode, sub_sample=sub_sample, impl=impl),
                  3).double().eval()
    x = torch.randn(2, 8, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        ref = _released_nonlocal(m.state_dict(), x, mode, sub_sample)
        torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)
    if mode == 'gaussian':  # the old default (scaled) is measurably different
        scaled = randomise(NonLocal2dBlock(8, mode=mode, sub_sample=sub_sample,
                                           use_scale=True), 3).double().eval()
        with torch.no_grad():
            assert (scaled(x) - ref).abs().max() > 1e-3


@pytest.mark.parametrize('mode', MODES)
def test_default_matches_mmcv_nonlocal2d(mode):
    """mmcv's NonLocal2d with our block's weights (default use_scale)."""
    from mmcv.cnn import NonLocal2d
    ours = randomise(NonLocal2dBlock(8, mode=mode, sub_sample=True), 5).double().eval()
    theirs = NonLocal2d(8, mode=mode, sub_sample=True).double().eval()
    sd = ours.state_dict()
    mapping = {'g.0.conv': 'g', 'conv_out.conv': 'conv_out.conv',
               'theta.conv': 'theta', 'phi.0.conv': 'phi', 'concat_project.conv': 'concat_project'}
    new = {}
    for key in theirs.state_dict():
        prefix, leaf = key.rsplit('.', 1)
        new[key] = sd[f'{mapping[prefix]}.{leaf}']
    theirs.load_state_dict(new)
    x = torch.randn(2, 8, 6, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('impl', ['fused', 'explicit'])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_large_inputs(mode, impl, dtype):
    """Input std 30, C = 32: theta^T phi reaches beyond float16's 65504 (checked
    below), while the block's output stays in range (g scaled down). Under
    autocast every mode and path stays finite and within half-precision
    error of float32: the explicit softmax, the dot-product and the
    concatenation sums run in float32."""
    m = randomise(NonLocal2dBlock(32, mode=mode, sub_sample=True, impl=impl), 2,
                  std=0.3).eval()
    with torch.no_grad():
        m.g.weight.mul_(1e-3)
        m.g.bias.mul_(1e-3)
    x = torch.randn(1, 32, 8, 8, generator=torch.Generator().manual_seed(0)) * 30
    with torch.no_grad():
        ref = m(x) - x
        with torch.autocast('cpu', dtype=dtype):
            out = m(x)
            if mode != 'gaussian':  # the product formed in half overflows
                th = m.theta(x).flatten(2)
                assert dtype != torch.float16 or not torch.isfinite(
                    th.transpose(1, 2) @ th).all()
    res = out.float() - x
    assert torch.isfinite(res).all()
    err = (res - ref).abs() / ref.abs().max()
    if mode in ('embedded_gaussian', 'gaussian') and dtype == torch.bfloat16:
        # logits of ~1e4 give a near one-hot softmax; bfloat16's 8-bit
        # mantissa moves them by ~1e2, so near-tied keys may swap: the bulk
        assert (err < 2e-2).float().mean() > 0.9
    else:
        assert err.max() < (1e-2 if dtype == torch.float16 else 4e-2), err.max()


def test_bad_arguments_are_named():
    for kwargs, words in [
            (dict(reduction=2.0), r'reduction=2\.0'),
            (dict(reduction=0), 'reduction=0'),
            (dict(norm_cfg=dict(type='BatchNorm9d')), "norm_cfg: unknown norm type 'BatchNorm9d'"),
            (dict(norm_cfg=dict(num_groups=2)), 'norm_cfg must be None or a dict with a "type"'),
            (dict(mode='cosine'), "mode must be one of .* got 'cosine'")]:
        with pytest.raises(ValueError, match=words):
            NonLocal2dBlock(8, **kwargs)
    for bad in (0, 2.0, True, -3):
        with pytest.raises(ValueError, match=f'in_channels must be an int >= 1, got {bad!r}'):
            NonLocal2dBlock(bad)
        with pytest.raises(ValueError, match='in_channels'):
            SimplifiedNonLocal2d(bad)
