"""The block contract of the non-local / GC / GCNL / self-attention blocks.

Every block, in every mode and option below, must

* take any batch, 0 included, and any map from 1x1, forward and backward;
* give the same result traced (``torch.jit.trace``) or ONNX-exported at one
  size and run at another (8x8 -> 16x16 and 12x20).

The blocks are NonLocal2dBlock / SimplifiedNonLocal2d and
GlobalContextBlock (Cao et al., "Global Context Networks"),
GCNLBlock (Woo et al., "Global Context and Geometric Priors for Effective
Non-Local Self-Attention") and BottleneckSelfAttention (Lee, Kim, Jung,
"Improving Object Detection Quality by Incorporating Global Contexts via
Self-Attention").
"""
import io
import warnings

import pytest
import torch
from mmengine.registry import MODELS

import mmctx  # noqa: F401  (registration)
from layer_helpers import randomise  # noqa: E402

C = 16
NL_MODES = ('embedded_gaussian', 'gaussian', 'dot_product', 'concatenation')

BLOCKS = {}
for _mode in NL_MODES:
    for _sub in (False, True):
        for _impl in ('fused', 'explicit'):
            BLOCKS[f'nl-{_mode}-sub{int(_sub)}-{_impl}'] = dict(
                type='NonLocal2dBlock', mode=_mode, sub_sample=_sub, impl=_impl)
BLOCKS['nl-gn'] = dict(type='NonLocal2dBlock', norm_cfg=dict(type='GN', num_groups=4))
BLOCKS['nl-bn'] = dict(type='NonLocal2dBlock', sub_sample=True, norm_cfg=dict(type='BN'))
BLOCKS['snl'] = dict(type='SimplifiedNonLocal2d')
for _pool in ('att', 'avg'):
    for _fusion in ('add', 'mul', ('add', 'mul')):
        BLOCKS[f'gc-{_pool}-{"+".join(_fusion) if isinstance(_fusion, tuple) else _fusion}'] = \
            dict(type='GlobalContextBlock', ratio=4, pooling=_pool, fusion=_fusion)
BLOCKS['gc-no-bottleneck'] = dict(type='GlobalContextBlock', bottleneck=False)
for _impl in ('fused', 'explicit'):
    _g = dict(type='GCNLBlock', num_heads=4, impl=_impl)
    BLOCKS[f'gcnl-{_impl}'] = _g
    BLOCKS[f'gcnl-sub-before-{_impl}'] = dict(_g, sub_sample=True, pool_order='before')
    BLOCKS[f'gcnl-sub-after-{_impl}'] = dict(_g, sub_sample=True, pool_order='after')
    BLOCKS[f'gcnl-no-pos-{_impl}'] = dict(_g, use_rel_pos=False, sub_sample=True)
    BLOCKS[f'gcnl-no-ctx-scale-{_impl}'] = dict(_g, use_context=False, use_scale=True)
    BLOCKS[f'bsa-{_impl}'] = dict(type='BottleneckSelfAttention', num_heads=2,
                                  num_layers=2, impl=_impl)


def build(name):
    block = MODELS.build(dict(BLOCKS[name], in_channels=C))
    return randomise(block, 0, std=0.2)


@pytest.mark.parametrize('name', sorted(BLOCKS))
@pytest.mark.parametrize('shape', [(0, C, 5, 6), (0, C, 1, 1), (2, C, 1, 1), (1, C, 1, 3)])
def test_any_batch_any_map_forward_and_backward(name, shape):
    block = build(name).train()
    x = torch.randn(*shape, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    (out * weight).sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    if shape[0] > 0:
        # a real batch: the gradient reaches the input through the block
        # (not only through the residual, which passes ``weight`` on)
        assert not torch.allclose(x.grad, weight)
    for p in block.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    block.eval()
    with torch.no_grad():
        assert block(x).shape == x.shape


def _reference(block, x):
    with torch.no_grad():
        return block(x)


SIZES = [(16, 16), (12, 20)]


@pytest.mark.parametrize('name', sorted(BLOCKS))
def test_traced_at_8x8_runs_at_other_sizes(name):
    block = build(name).eval()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings of shape checks
        traced = torch.jit.trace(block, torch.randn(2, C, 8, 8), check_trace=False)
    for hw in SIZES:
        x = torch.randn(2, C, *hw)
        with torch.no_grad():
            out = traced(x)
        torch.testing.assert_close(out, _reference(block, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('name', sorted(BLOCKS))
def test_onnx_exported_at_8x8_runs_at_other_sizes(name):
    pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    block = build(name).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(
            block, (torch.randn(2, C, 8, 8), ), buf, dynamo=False,
            input_names=['x'], output_names=['y'], opset_version=17,
            dynamic_axes={'x': {0: 'b', 2: 'h', 3: 'w'}, 'y': {0: 'b', 2: 'h', 3: 'w'}})
    session = ort.InferenceSession(buf.getvalue(), providers=['CPUExecutionProvider'])
    for hw in SIZES:
        x = torch.randn(2, C, *hw)
        out = torch.from_numpy(session.run(None, {'x': x.numpy()})[0])
        torch.testing.assert_close(out, _reference(block, x), rtol=1e-4, atol=1e-4)
