"""GlobalContextBlock vs. Eq. 4 / Eq. 5 of Cao et al., "Global
Context Networks", and as an mmdet plugin."""
import pytest
import torch
from mmengine.registry import MODELS

import mmctx  # noqa: F401  (registration)
from mmctx.models.layers import GlobalContextBlock
from layer_helpers import randomise  # noqa: E402


def _conv(conv, v):
    out = conv.weight[:, :, 0, 0] @ v
    return out if conv.bias is None else out + conv.bias


def _ref_transform(seq, ctx, norm):
    """W_v2 ReLU(LN(W_v1 ctx)) written out on one (C,) vector."""
    if len(seq) == 1:
        return _conv(seq[0], ctx)
    hdn = _conv(seq[0], ctx)
    if norm:
        ln = seq[1]
        mu = hdn.mean()
        var = ((hdn - mu)**2).mean()
        hdn = (hdn - mu) / torch.sqrt(var + ln.eps)
        hdn = hdn * ln.weight.flatten() + ln.bias.flatten()
    return _conv(seq[-1], torch.clamp(hdn, min=0))


def _ref_gc(m, x):
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    for n in range(b):
        xf = x[n].flatten(1)
        if m.pooling == 'att':
            logits = torch.stack([_conv(m.conv_mask, xf[:, j])[0]
                                  for j in range(h * w)])
            alpha = logits.exp() / logits.exp().sum()
        else:
            alpha = torch.full((h * w, ), 1.0 / (h * w))
        ctx = sum(alpha[j] * xf[:, j] for j in range(h * w))
        z = x[n]
        if m.channel_mul is not None:
            s = _ref_transform(m.channel_mul, ctx, m.norm)
            z = z * torch.sigmoid(s)[:, None, None]
        if m.channel_add is not None:
            z = z + _ref_transform(m.channel_add, ctx, m.norm)[:, None, None]
        out[n] = z
    return out


@pytest.mark.parametrize('pooling', ['att', 'avg'])
@pytest.mark.parametrize('fusion', ['add', 'mul', ('add', 'mul')])
@pytest.mark.parametrize('norm,bottleneck', [('LN', True), (None, True),
                                             (None, False)])
def test_gc_matches_eq5(pooling, fusion, norm, bottleneck):
    m = randomise(GlobalContextBlock(
        8, ratio=4, pooling=pooling, fusion=fusion, norm=norm,
        bottleneck=bottleneck), 2).eval()
    x = torch.randn(2, 8, 3, 5)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _ref_gc(m, x), rtol=1e-4, atol=1e-4)
    attn = m.get_attention(x)
    assert attn.shape == (2, 1, 1, 15)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 1, 1))


def test_zero_init_and_gradients():
    x = torch.randn(2, 8, 4, 4)
    m = GlobalContextBlock(8, ratio=4)
    torch.testing.assert_close(m(x), x)  # last add conv zero-init
    m = randomise(GlobalContextBlock(8, ratio=2, fusion=('add', 'mul')), 2)
    for t in (m.channel_add, m.channel_mul):  # keep the ReLU units alive
        t[1].bias.data.fill_(1.0)
    m(x).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('hw', [(1, 1), (3, 7), (6, 2)])
def test_odd_maps_and_bf16(hw):
    x = torch.randn(2, 16, *hw)
    m = randomise(GlobalContextBlock(16, fusion=('add', 'mul')), 2)
    ref = m(x)
    assert ref.shape == x.shape
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = m(x)
    assert y.shape == x.shape and torch.isfinite(y.float()).all()
    # bfloat16 keeps 8 bits of mantissa: a few ops stay within a few per cent
    scale = ref.abs().max()
    torch.testing.assert_close(y.float(), ref, rtol=0.05, atol=0.03 * float(scale))


def test_param_count_gcnet():
    # §4.2: the bottleneck transform has 2 C C / r weights; + W_k (C) and the
    # biases / LN affine terms.
    c, r = 1024, 16
    m = GlobalContextBlock(c, ratio=r)
    h = c // r
    transform_w = (m.channel_add[0].weight.numel() +
                   m.channel_add[-1].weight.numel())
    assert transform_w == 2 * c * c // r
    total = sum(p.numel() for p in m.parameters())
    assert total == 2 * c * c // r + c + (h + c) + 2 * h
    # r=16 transform is 1/8 of the SNL transform C x C (§4.2)
    assert transform_w * 8 == c * c


def test_registry_and_bad_args():
    m = MODELS.build(dict(type='GlobalContextBlock', in_channels=32))
    assert isinstance(m, GlobalContextBlock) and m._abbr_ == 'gc'
    for kw, name in [(dict(ratio=0), 'ratio'), (dict(ratio=64), 'ratio'),
                     (dict(pooling='max'), 'pooling'),
                     (dict(fusion='cat'), 'fusion'),
                     (dict(fusion=('add', 'add')), 'fusion'),
                     (dict(norm='BN'), 'norm'),
                     (dict(ratio=4.0), r'ratio=4\.0 .*in_channels=32'),
                     (dict(act='GELU'), "act must be one of .*'GELU'")]:
        with pytest.raises(ValueError, match=name):
            GlobalContextBlock(32, **kw)
    for bad in (0, -1, 32.0, True):
        with pytest.raises(ValueError, match=f'in_channels must be an int >= 1, got {bad!r}'):
            GlobalContextBlock(bad)


def test_resnet_plugin():
    from mmdet.models.backbones import ResNet
    net = ResNet(
        depth=50, base_channels=8, out_indices=(0, 1, 2, 3),
        plugins=[dict(cfg=dict(type='GlobalContextBlock', ratio=16),
                      stages=(False, True, True, True),
                      position='after_conv3')])
    gcs = [mod for mod in net.modules() if isinstance(mod, GlobalContextBlock)]
    assert len(gcs) == 4 + 6 + 3  # one per bottleneck of res3-res5
    assert {g.in_channels for g in gcs} == {64, 128, 256}
    net.layer2[0].gc.channel_add[-1].weight.data.normal_()
    outs = net(torch.randn(2, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [32, 64, 128, 256]
    outs[-1].sum().backward()
    assert net.layer2[0].gc.conv_mask.weight.grad.abs().sum() > 0


def _num_params(module):
    return sum(p.numel() for p in module.parameters())


def test_param_overheads_match_gcnet_tables():
    """GC r16 at c3+c4+c5 of ResNet-50 (13 blocks, after conv3): Table 8(a)
    '+all GC' adds 28.08M - 25.56M = 2.52M parameters; one GC r16 at c4
    (C = 1024) '+1 GC' adds 25.69M - 25.56M = 0.13M. Table 5(d)/(e) (Mask
    R-CNN, 44.4M baseline, 0.1M rounding): r8 +5.0M, r16 +2.5M, r32 +1.3M,
    'w/o ratio' (one C x C conv) +20.0M."""
    from mmdet.models.backbones import ResNet
    net = ResNet(
        depth=50,
        plugins=[dict(cfg=dict(type='GlobalContextBlock', ratio=16),
                      stages=(False, True, True, True),
                      position='after_conv3')])
    gcs = [m for m in net.modules() if isinstance(m, GlobalContextBlock)]
    widths = sorted(g.in_channels for g in gcs)
    assert widths == [512] * 4 + [1024] * 6 + [2048] * 3
    assert abs(sum(map(_num_params, gcs)) / 1e6 - 2.52) <= 0.005
    assert abs(_num_params(GlobalContextBlock(1024)) / 1e6 - 0.13) <= 0.005

    def overhead(**kwargs):
        return sum(_num_params(GlobalContextBlock(c, **kwargs))
                   for c in widths) / 1e6

    for kwargs, paper in [(dict(ratio=8), 49.4 - 44.4),
                          (dict(ratio=16), 46.9 - 44.4),
                          (dict(ratio=32), 45.7 - 44.4),
                          (dict(bottleneck=False), 64.4 - 44.4)]:
        assert abs(overhead(**kwargs) - paper) <= 0.1, kwargs
