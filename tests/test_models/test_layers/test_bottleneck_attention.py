"""BottleneckSelfAttention (Lee, Kim, Jung, "Improving Object Detection
Quality by Incorporating Global Contexts via Self-Attention" §3) against a slow reference of Eq. 1."""
import math

import pytest
import torch
from mmengine.registry import MODELS

import mmctx  # noqa: F401  (registers the blocks)
from mmctx.models.layers import (BottleneckSelfAttention,
                                 init_self_attention_from_bottleneck)

SHAPES = [(1, 1), (5, 7), (6, 3)]  # 1x1, odd, non-square


def build(**kwargs):
    cfg = dict(type='BottleneckSelfAttention', in_channels=16, num_heads=2)
    cfg.update(kwargs)
    torch.manual_seed(0)
    module = MODELS.build(cfg)
    # larger weights than the 0.01 init so the attention is far from uniform
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)
    return module


def dense(conv, x_tokens):
    """A 1x1 conv written as a dense layer on (N, C) word vectors."""
    w = conv.weight[:, :, 0, 0]
    return x_tokens @ w.t() + conv.bias


def reference_layer(layer, x):
    """Lee et al. §3.2 by the letter: words (N, C), Q/K/V dense layers, Eq. 1
    per head with explicit loops over heads and word pairs, out dense layer."""
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    heads = layer.num_heads
    for n in range(b):
        words = x[n].reshape(c, h * w).t()  # (N, C) "visual sentence"
        q, k, v = (dense(layer.query, words), dense(layer.key, words),
                   dense(layer.value, words))
        d = q.shape[1] // heads
        heads_out = []
        for i in range(heads):
            sl = slice(i * d, (i + 1) * d)
            logits = torch.empty(h * w, h * w, dtype=x.dtype)
            for a in range(h * w):
                for bb in range(h * w):
                    logits[a, bb] = (q[a, sl] * k[bb, sl]).sum() / math.sqrt(d)
            att = torch.exp(logits - logits.max(1, keepdim=True).values)
            att = att / att.sum(1, keepdim=True)
            heads_out.append(att @ v[:, sl])
        y = dense(layer.out, torch.cat(heads_out, 1))  # (N, C)
        out[n] = words.t().reshape(c, h, w) + y.t().reshape(c, h, w)
    return out


@pytest.mark.parametrize('impl', ['fused', 'explicit'])
@pytest.mark.parametrize('hw', SHAPES)
def test_matches_reference(impl, hw):
    module = build(num_heads=2, num_layers=2, impl=impl).double()
    x = torch.randn(2, 16, *hw, dtype=torch.float64)
    expected = x
    for layer in module.layers:
        expected = reference_layer(layer, expected)
    out = module(x)
    assert out.shape == x.shape
    torch.testing.assert_close(out, expected)
    # the attention really mixes positions (not a trivial uniform/identity)
    if hw != (1, 1):
        att = module.get_attention(x, layer=0)
        assert att.shape == (2, 2, hw[0] * hw[1], hw[0] * hw[1])
        torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:-1],
                                                           dtype=att.dtype))
        assert att.std() > 1e-3


def test_get_attention_of_each_layer_matches_reference():
    module = build(num_heads=4, num_layers=2, in_channels=32).double()
    x = torch.randn(1, 32, 3, 4, dtype=torch.float64)
    first = module.layers[0]
    x1 = first(x)
    for index, inp in ((0, x), (1, x1), (-1, x1)):
        layer = module.layers[index]
        att = module.get_attention(x, layer=index)
        words = inp[0].reshape(32, 12).t()
        q, k = dense(layer.query, words), dense(layer.key, words)
        d = q.shape[1] // 4
        for i in range(4):
            sl = slice(i * d, (i + 1) * d)
            ref = torch.softmax(q[:, sl] @ k[:, sl].t() / math.sqrt(d), dim=1)
            torch.testing.assert_close(att[0, i], ref)


def test_fused_equals_explicit_forward_and_gradients():
    x = torch.randn(2, 16, 7, 5, requires_grad=True)
    results = []
    for impl in ('fused', 'explicit'):
        module = build(impl=impl, num_layers=2)
        x.grad = None
        out = module(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), x.grad.clone(),
                        {n: p.grad.clone() for n, p in module.named_parameters()}))
    (o1, gx1, gp1), (o2, gx2, gp2) = results
    torch.testing.assert_close(o1, o2, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gx1, gx2, rtol=1e-4, atol=1e-5)
    assert gp1.keys() == gp2.keys()
    for name in gp1:
        torch.testing.assert_close(gp1[name], gp2[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('impl', ['fused', 'explicit'])
def test_gradients_reach_all_parameters(impl):
    module = build(impl=impl, num_layers=2, attn_drop=0.1)
    module.train()
    x = torch.randn(2, 16, 5, 6)
    (module(x) ** 2).mean().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_attention_dropout_only_in_training():
    module = build(attn_drop=0.5, impl='explicit')
    x = torch.randn(1, 16, 4, 4)
    module.eval()
    torch.testing.assert_close(module(x), module(x))
    module.train()
    torch.manual_seed(1)
    a = module(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, module(x))


@pytest.mark.parametrize('impl', ['fused', 'explicit'])
def test_autocast_bf16(impl):
    module = build(impl=impl)
    x = torch.randn(2, 16, 5, 7)
    ref = module(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = module(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.1)


@pytest.mark.parametrize('kwargs, name', [
    (dict(reduction=3), 'reduction'),
    (dict(num_heads=3), 'num_heads'),
    (dict(num_heads=0), 'num_heads'),
    (dict(impl='flash'), 'impl'),
    (dict(num_layers=0), 'num_layers'),
    (dict(attn_drop=1.0), 'attn_drop'),
    (dict(reduction=4.0), r'reduction=4\.0 .*in_channels=64'),
    (dict(num_heads=2.0), r'num_heads=2\.0'),
    (dict(num_layers=1.5), r'num_layers must be an int >= 1, got 1\.5'),
    (dict(in_channels=0), 'in_channels must be an int >= 1, got 0'),
    (dict(in_channels=64.0), r'in_channels must be an int >= 1, got 64\.0'),
])
def test_bad_arguments(kwargs, name):
    cfg = dict(type='BottleneckSelfAttention', in_channels=64)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=name):
        MODELS.build(cfg)


def test_bad_impl_assignment():
    module = build()
    with pytest.raises(ValueError, match='impl'):
        module.impl = 'flash'


def _random_bottleneck(inplanes=64, planes=16):
    from mmdet.models.backbones.resnet import Bottleneck
    block = Bottleneck(inplanes, planes)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.5)
        for norm in (block.norm1, block.norm3):
            norm.running_mean.normal_(0, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return block.eval()


def test_init_from_bottleneck_copies_the_1x1_convs():
    block = _random_bottleneck()
    module = build(in_channels=64, num_heads=4, num_layers=2)
    init_self_attention_from_bottleneck(module, block)
    for layer in module.layers:
        for dense_layer in (layer.query, layer.key, layer.value):
            assert torch.equal(dense_layer.weight, block.conv1.weight)
            assert torch.count_nonzero(dense_layer.bias) == 0
        assert torch.equal(layer.out.weight, block.conv3.weight)
        assert torch.count_nonzero(layer.out.bias) == 0
    # Q = K: with weights from one conv the attention logits are symmetric
    x = torch.randn(1, 64, 3, 5)
    layer = module.layers[0]
    q = layer.query(x).flatten(2)
    logits = q.transpose(1, 2) @ q
    torch.testing.assert_close(logits, logits.transpose(1, 2))


def test_init_from_bottleneck_folds_batchnorm():
    block = _random_bottleneck()
    module = build(in_channels=64, num_heads=4)
    init_self_attention_from_bottleneck(module, block, fold_norm=True)
    layer = module.layers[0]
    x = torch.randn(2, 64, 4, 3)
    z = torch.randn(2, 16, 4, 3)
    with torch.no_grad():
        expected_qkv = block.norm1(block.conv1(x))
        expected_out = block.norm3(block.conv3(z))
        for dense_layer in (layer.query, layer.key, layer.value):
            torch.testing.assert_close(dense_layer(x), expected_qkv,
                                       rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(layer.out(z), expected_out,
                                   rtol=1e-4, atol=1e-4)


def test_init_from_one_bottleneck_per_layer_and_shape_errors():
    blocks = [_random_bottleneck(), _random_bottleneck()]
    module = build(in_channels=64, num_heads=4, num_layers=2)
    init_self_attention_from_bottleneck(module, blocks)
    for layer, block in zip(module.layers, blocks):
        assert torch.equal(layer.key.weight, block.conv1.weight)
        assert torch.equal(layer.out.weight, block.conv3.weight)
    with pytest.raises(ValueError, match='bottleneck'):
        init_self_attention_from_bottleneck(module, blocks[:1])
    # first block of a stage: inplanes != 4 * planes -> conv1 does not fit
    with pytest.raises(ValueError, match='conv1'):
        init_self_attention_from_bottleneck(module, _random_bottleneck(32, 16))
    with pytest.raises(ValueError, match='conv1'):
        init_self_attention_from_bottleneck(build(in_channels=64, reduction=2),
                                            blocks[0])


def test_resnet_plugin():
    from mmdet.registry import MODELS as DET_MODELS
    backbone = DET_MODELS.build(
        dict(type='mmdet.ResNet', depth=50, num_stages=4, out_indices=(3, ),
             plugins=[dict(cfg=dict(type='BottleneckSelfAttention', num_heads=4),
                           stages=(False, False, False, True),
                           position='after_conv3')]))
    block = backbone.layer4[1]
    plugin = getattr(block, block.after_conv3_plugin_names[0])
    assert isinstance(plugin, BottleneckSelfAttention)
    assert plugin.in_channels == 2048 and plugin.inner_channels == 512
    # the paper's init: the plugin of layer4[1] from layer4[1]'s own 1x1 convs
    init_self_attention_from_bottleneck(plugin, block)
    assert torch.equal(plugin.layers[0].value.weight, block.conv1.weight)
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 64, 96))
    assert out[0].shape == (1, 2048, 2, 3)
