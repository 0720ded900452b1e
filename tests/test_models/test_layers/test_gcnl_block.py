"""GCNL block (Woo et al., "Global Context and Geometric Priors for Effective
Non-Local Self-Attention", Eqs. 1-9) against a per-pair, per-head slow reference."""
import math

import pytest
import torch
from mmengine.registry import MODELS

import mmctx  # noqa: F401
from mmctx.models.layers.gcnl import relative_position_encoding
from layer_helpers import LargestTensor  # noqa: E402


def _build(**kwargs):
    torch.manual_seed(0)
    m = MODELS.build(dict(type='GCNLBlock', **kwargs))
    for p in m.parameters():  # W_o is zero-initialised: randomise everything
        torch.nn.init.normal_(p, std=0.3)
    return m.eval()


def _encoding(delta, n, channels):
    """Eq. 7 for one channel n and one offset, C/2 = channels."""
    if n % 2 == 0:
        return math.sin(delta / 1000**(2 * n / (2 * channels)))
    return math.cos(delta / 1000**(2 * (n - 1) / (2 * channels)))


def _reference(m, x):
    """Eqs. 1-5 and 3 with explicit loops over heads and query/key pairs."""
    b, c, h, w = x.shape
    q = m.query(x)
    if m.sub_sample and m.pool_order == 'before':  # k = W_k(pool(X))
        xp = torch.nn.functional.max_pool2d(x, 2, ceil_mode=True)
        k, v = m.key(xp), m.value(xp)
    elif m.sub_sample:  # k = pool(W_k(X))
        k = torch.nn.functional.max_pool2d(m.key(x), 2, ceil_mode=True)
        v = torch.nn.functional.max_pool2d(m.value(x), 2, ceil_mode=True)
    else:
        k, v = m.key(x), m.value(x)
    kh, kw = k.shape[-2:]
    s = 2 if m.sub_sample else 1
    heads, d = m.num_heads, m.channels // m.num_heads
    ctx = (torch.sigmoid(m.context(x.mean((2, 3), keepdim=True)))[:, :, 0, 0]
           if m.use_context else torch.ones(b, m.channels))
    out = torch.zeros(b, m.channels, h, w)
    for bi in range(b):
        for n in range(heads):
            ch = slice(n * d, (n + 1) * d)
            logits = torch.zeros(h * w, kh * kw)
            for yi in range(h):
                for xi in range(w):
                    qi = q[bi, ch, yi, xi]
                    for yj in range(kh):
                        for xj in range(kw):
                            val = (qi * ctx[bi, ch] * k[bi, ch, yj, xj]).sum()
                            if m.use_rel_pos:
                                pc = m.pos_channels
                                rx_enc = torch.tensor([_encoding(xi - s * xj, t, pc)
                                                       for t in range(pc)])
                                ry_enc = torch.tensor([_encoding(yi - s * yj, t, pc)
                                                       for t in range(pc)])
                                r_x = m.rel_x.weight[ch, :, 0, 0] @ rx_enc + m.rel_x.bias[ch]
                                r_y = m.rel_y.weight[ch, :, 0, 0] @ ry_enc + m.rel_y.bias[ch]
                                val = val + (qi * (r_x + r_y)).sum()  # q^T (r_x + r_y)
                            logits[yi * w + xi, yj * kw + xj] = val * m.scale
            att = logits.softmax(-1)
            vals = v[bi, ch].reshape(d, -1)
            out[bi, ch] = (vals @ att.t()).reshape(d, h, w)
    return x + m.out(out)


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(use_context=False),
    dict(use_rel_pos=False),
    dict(sub_sample=True),
    dict(sub_sample=True, pool_order='after'),
    dict(use_scale=True, num_heads=2),
])
@pytest.mark.parametrize('hw', [(1, 1), (3, 4), (5, 3)])
@pytest.mark.parametrize('impl', ['fused', 'explicit'])
def test_matches_per_pair_reference(kwargs, hw, impl):
    m = _build(in_channels=16, impl=impl, **{'num_heads': 4, **kwargs})
    x = torch.randn(2, 16, *hw)
    with torch.no_grad():
        assert torch.allclose(m(x), _reference(m, x), atol=1e-4)


def test_encoding_matches_eq7():
    enc = relative_position_encoding(4, 3, 6, stride=2)
    for n in range(6):
        for i in range(4):
            for j in range(3):
                assert enc[n, i, j].item() == pytest.approx(_encoding(i - 2 * j, n, 6), abs=1e-6)


@pytest.mark.parametrize('sub_sample', [False, True])
def test_fused_equals_explicit_and_all_parameters_learn(sub_sample):
    results = []
    for impl in ('fused', 'explicit'):
        m = _build(in_channels=16, num_heads=4, impl=impl, sub_sample=sub_sample).train()
        x = torch.randn(2, 16, 5, 7, generator=torch.Generator().manual_seed(3),
                        requires_grad=True)
        out = m(x)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        results.append([out.detach(), x.grad] + [p.grad for p in m.parameters()])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize('sub_sample,use_rel_pos', [(False, True), (True, True),
                                                    (False, False)])
def test_fused_never_forms_the_relation_or_bias_matrix(sub_sample, use_rel_pos):
    """48x48 map, N = 2304: the explicit path forms the (heads, N, N^) bias;
    the fused path (one-hot augmented q / k, one mask-free SDPA) creates no
    tensor of N x N^ elements in forward or backward, only (heads, N, width)
    ones with width = d + H^ + W^ rounded up to 8."""
    h = w = 48
    n = h * w
    kh, kw = (h // 2, w // 2) if sub_sample else (h, w)
    heads, d = 2, 8
    x = torch.randn(1, 32, h, w, requires_grad=True)
    largest = {}
    for impl in ('fused', 'explicit'):
        m = _build(in_channels=32, num_heads=heads, impl=impl, sub_sample=sub_sample,
                   use_rel_pos=use_rel_pos)
        with LargestTensor() as spy:
            m(x).sum().backward()
        largest[impl] = spy.largest
    assert largest['explicit'] >= heads * n * kh * kw  # bias / relation matrix
    assert largest['fused'] < n * kh * kw / 4
    assert largest['fused'] <= heads * n * (d + kh + kw + 7)


def test_auto_is_the_fused_path():
    """impl='auto' runs the one-hot fused path (it ran the explicit one, silently):
    no N x N^ tensor, and the explicit path's output."""
    h = w = 24
    x = torch.randn(1, 16, h, w)
    auto = _build(in_channels=16, num_heads=2, impl='auto')
    explicit = _build(in_channels=16, num_heads=2, impl='explicit')
    explicit.load_state_dict(auto.state_dict())
    with torch.no_grad():
        with LargestTensor() as spy:
            out = auto(x)
        torch.testing.assert_close(out, explicit(x), rtol=1e-5, atol=1e-5)
    assert spy.largest < (h * w) ** 2 / 4


def test_residual_identity_at_init_and_dropout_only_in_training():
    m = MODELS.build(dict(type='GCNLBlock', in_channels=16, num_heads=4, attn_drop=0.5))
    x = torch.randn(1, 16, 3, 3)
    assert torch.equal(m(x), x)  # W_o zero-initialised
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.3)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    torch.manual_seed(0)
    a = m(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, m(x))


def test_bf16_autocast_and_attention_shape():
    m = _build(in_channels=16, num_heads=4, sub_sample=True)
    x = torch.randn(1, 16, 5, 7)
    with torch.no_grad():
        ref = m(x)
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad():
        out = m(x)
    assert out.shape == x.shape and torch.isfinite(out.float()).all()
    # against float32: bfloat16's 8-bit mantissa, a few per cent
    torch.testing.assert_close(out.float(), ref, rtol=0.05,
                               atol=0.03 * float(ref.abs().max()))
    with torch.no_grad():
        att = m.get_attention(x)
    assert att.shape == (1, 4, 35, 3 * 4)
    assert torch.allclose(att.sum(-1), torch.ones(1, 4, 35), atol=1e-5)


@pytest.mark.parametrize('kwargs,word', [
    (dict(in_channels=16, num_heads=3), 'num_heads=3 .*in_channels // reduction=8'),
    (dict(in_channels=16, num_heads=2.0), r'num_heads=2\.0'),
    (dict(in_channels=15, reduction=2), 'reduction=2 .*dividing in_channels=15'),
    (dict(in_channels=16, reduction=2.0), r'reduction=2\.0'),
    (dict(in_channels=16, attn_drop=1.5), r'attn_drop .*got 1\.5'),
    (dict(in_channels=16, impl='flash'), "impl .*'flash'"),
    (dict(in_channels=16, pool_order='middle'), "pool_order .*'middle'"),
    (dict(in_channels=0), 'in_channels must be an int >= 1, got 0'),
    (dict(in_channels=0, use_rel_pos=False), 'in_channels must be an int >= 1, got 0'),
    (dict(in_channels=16.0), r'in_channels must be an int >= 1, got 16\.0'),
    (dict(in_channels=1, reduction=1, num_heads=1), 'use_rel_pos needs in_channels >= 2'),
])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        MODELS.build(dict(type='GCNLBlock', **kwargs))


def test_as_resnet_plugin():
    from mmdet.registry import MODELS as DET
    net = DET.build(dict(type='ResNet', depth=50, num_stages=4, out_indices=(3, ),
                         plugins=[dict(cfg=dict(type='GCNLBlock', num_heads=4),
                                       stages=(False, False, True, True),
                                       position='after_conv2')]))
    assert any(type(mod).__name__ == 'GCNLBlock' for mod in net.modules())
    out = net(torch.randn(1, 3, 64, 64))
    assert out[0].shape == (1, 2048, 2, 2)


def test_pool_orders_differ_and_default_is_before():
    """Max-pooling does not commute with the 1x1 convs: the two orders are
    different functions (both checked against the reference above)."""
    assert MODELS.build(dict(type='GCNLBlock', in_channels=16)).pool_order == 'before'
    x = torch.randn(1, 16, 6, 6)
    outs = []
    for order in ('before', 'after'):
        m = _build(in_channels=16, num_heads=4, sub_sample=True, pool_order=order)
        with torch.no_grad():
            outs.append(m(x))
    assert (outs[0] - outs[1]).abs().max() > 1e-2
    # without sub-sampling the order is irrelevant
    a = _build(in_channels=16, num_heads=4, pool_order='before')
    b = _build(in_channels=16, num_heads=4, pool_order='after')
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def _conv_flops(m, x):
    """Multiply-adds of every nn.Conv2d call in ``m(x)`` (the papers'
    convention counts convolutions / linear layers only), by module name."""
    counts = {}

    def hook(mod, inp, out, name):
        k = mod.weight.shape[1] * mod.weight.shape[2] * mod.weight.shape[3]
        counts[name] = counts.get(name, 0) + out.numel() * k

    handles = [mod.register_forward_hook(lambda mod, i, o, n=name: hook(mod, i, o, n))
               for name, mod in m.named_modules() if isinstance(mod, torch.nn.Conv2d)]
    with torch.no_grad():
        m(x)
    for h in handles:
        h.remove()
    return counts


def test_pool_before_gives_the_papers_ebfpn_flops():
    """Woo et al. Table 2: +0.66 GFLOPs for EBFPN over FPN, +1.05 G for BFPN
    (four 256x256 1x1 convs at P4 of a 1280x800 image, 80 x 50). The GCNL
    block of EBFPN (C^ = C = 256, 8 heads, sub-sampled) at that size: with
    the input pooled first its W_q, W_k, W_v, W_o convs cost 0.655 G, the
    paper's figure; pooling after W_k / W_v costs 1.049 G, BFPN's. The W_r
    convs on the position encodings (0.146 G) and W_c are not in that
    figure."""
    x = torch.randn(1, 256, 50, 80)
    main = ('query', 'key', 'value', 'out')
    got = {}
    for order in ('before', 'after'):
        m = MODELS.build(dict(type='GCNLBlock', in_channels=256, reduction=1, num_heads=8,
                              sub_sample=True, pool_order=order)).eval()
        counts = _conv_flops(m, x)
        got[order] = sum(counts[n] for n in main) / 1e9
        rel = (counts['rel_x'] + counts['rel_y']) / 1e9
        assert rel == pytest.approx(128 * 256 * (80 * 40 + 50 * 25) / 1e9)
    assert got['before'] == pytest.approx(0.66, abs=0.005)
    assert got['after'] == pytest.approx(1.05, abs=0.005)


def test_init_weights_restores_the_identity_start():
    m = _build(in_channels=16, num_heads=4)
    x = torch.randn(2, 16, 4, 5)
    with torch.no_grad():
        assert not torch.allclose(m(x), x)
        q = m.query.weight.clone()
        m.init_weights()
        assert torch.equal(m(x), x)
    assert torch.equal(m.query.weight, q)  # only W_o is reset
    assert m.out.weight.abs().sum() == 0 and m.out.bias.abs().sum() == 0


def test_ebfpn_init_keeps_xavier_and_zero_output_through_block_contract():
    """EBFPN no longer reaches into the refiner: mmengine's init runs the
    neck's Xavier init on every conv, then the refiner's init_weights."""
    from mmdet.registry import MODELS as DET
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):  # whatever an earlier test left
        neck = DET.build(dict(type='EBFPN', in_channels=16, num_levels=3, refine_level=1))
    assert neck.refine.pool_order == 'before' and neck.refine.sub_sample
    for p in neck.refine.parameters():
        torch.nn.init.normal_(p, std=0.3)
    neck.init_weights()
    assert neck.refine.out.weight.abs().sum() == 0 and neck.refine.out.bias.abs().sum() == 0
    w = neck.refine.query.weight
    bound = (6 / (w.shape[0] + w.shape[1])) ** 0.5  # Xavier uniform
    assert w.abs().max() <= bound and w.abs().max() > bound / 2
    assert neck.refine.query.bias.abs().sum() == 0
    feats = [torch.randn(1, 16, 16 // 2**i, 16 // 2**i) for i in range(3)]
    with torch.no_grad():
        # identity refiner: every output is its input plus the balanced map
        # redistributed, exactly as BFP without refinement
        outs = neck(feats)
        neck.refine_type = None
        plain = neck(feats)
    for a, b in zip(outs, plain):
        assert torch.equal(a, b)
