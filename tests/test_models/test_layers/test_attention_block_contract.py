"""The block contract (module docstring of ``mmctx.models.layers``), for every
block that ``mmctx.models.layers`` registers in the root ``MODELS``.

Every registered block, walked from the package's ``__all__`` and the registry
(so a new block is checked without being named here), must

* take ``in_channels`` as its first parameter;
* with ``identity_start``, be the identity again after random weights and
  ``init_weights()``;
* give, from ``get_attention``, a (B, heads, queries, keys) map whose rows
  sum to 1 (unless it sets ``attention_normalised = False``);
* give the same output on both ``impl`` paths where it has two.

Every block, in every mode and option of ``BLOCKS`` (and every registered block
in its default configuration), must

* take any batch, 0 included, and any map from 1x1, forward and backward;
* give the same result traced (``torch.jit.trace``) or ONNX-exported at one
  size and run at another (8x8 -> 16x16 and 12x20).

The blocks are NonLocal2dBlock / SimplifiedNonLocal2d and
GlobalContextBlock (Cao et al., "Global Context Networks"),
GCNLBlock (Woo et al., "Global Context and Geometric Priors for Effective
Non-Local Self-Attention") and BottleneckSelfAttention (Lee, Kim, Jung,
"Improving Object Detection Quality by Incorporating Global Contexts via
Self-Attention"); the comparison blocks CompactGeneralizedNonLocal2d (Yue et
al., "Compact Generalized Non-local Network"), EfficientAttention2d (Shen et
al., "Efficient Attention: Attention with Linear Complexities"), GloReUnit
(Chen et al., "Graph-Based Global Reasoning Networks") and
AttentionalClassFeature (Zhang et al., "ACFNet: Attentional Class Feature
Network for Semantic Segmentation"); and the object-context blocks.
"""
import copy
import importlib
import inspect
import io
import pkgutil
import warnings

import pytest
import torch
from mmengine.registry import MODELS

import mmctx  # noqa: F401  (registration)
from layer_helpers import randomise  # noqa: E402
from mmctx.analysis.attention_stats import key_grid

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
BLOCKS['cgnl-dot-scale'] = dict(type='CompactGeneralizedNonLocal2d', groups=2, use_scale=True)
BLOCKS['cgnl-gaussian-scale'] = dict(type='CompactGeneralizedNonLocal2d', groups=4,
                                     kernel='gaussian', use_scale=True, gamma=0.1)
BLOCKS['ea'] = dict(type='EfficientAttention2d', num_heads=2)
BLOCKS['glore-no-norm'] = dict(type='GloReUnit', norm_cfg=None)
BLOCKS['acf-one-class'] = dict(type='AttentionalClassFeature', num_classes=1)


def _exported_modules():
    """{name: class} of every nn.Module class in the ``__all__`` of a module of
    ``mmctx.models.layers``."""
    import mmctx.models.layers as layers
    found = {}
    for info in pkgutil.iter_modules(layers.__path__):
        module = importlib.import_module(f'{layers.__name__}.{info.name}')
        for name in getattr(module, '__all__', []):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, torch.nn.Module):
                found[name] = obj
    return found


def _registered_blocks():
    """{name: class} of every exported block registered in the root ``MODELS``."""
    return {name: obj for name, obj in _exported_modules().items()
            if MODELS.get(name) is obj}


REGISTERED = _registered_blocks()
# arguments a block needs besides in_channels = 16 (BSA: 8 heads do not split 16 / 4)
# (GC: ratio 16 would leave one hidden channel, which LN maps to a constant)
REQUIRED = {'AttentionalClassFeature': dict(num_classes=3),
            'GlobalContextBlock': dict(ratio=4),
            'BottleneckSelfAttention': dict(num_heads=2)}
for _name in REGISTERED:
    BLOCKS[f'default-{_name}'] = dict(type=_name, **REQUIRED.get(_name, {}))
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


def test_the_walk_finds_every_family():
    """The registry walk is no empty loop: it sees each family's blocks."""
    assert {'NonLocal2dBlock', 'SimplifiedNonLocal2d', 'GlobalContextBlock', 'GCNLBlock',
            'BottleneckSelfAttention', 'EfficientNonLocal2d', 'CompactGeneralizedNonLocal2d',
            'EfficientAttention2d', 'GloReUnit', 'AttentionalClassFeature'} <= set(REGISTERED)
    # every block class the package exports is registered (the analysis tools find it),
    # but BSA's single layer, which only BottleneckSelfAttention builds
    assert set(_exported_modules()) - set(REGISTERED) == {'SelfAttentionLayer'}


@pytest.mark.parametrize('name', sorted(REGISTERED))
def test_in_channels_is_the_first_parameter(name):
    params = list(inspect.signature(REGISTERED[name].__init__).parameters)
    assert params[:2] == ['self', 'in_channels'], params


@pytest.mark.parametrize('name', sorted(REGISTERED))
def test_declares_its_start(name):
    block = MODELS.build(dict(BLOCKS[f'default-{name}'], in_channels=C))
    assert isinstance(block.identity_start, bool)
    if block.identity_start:
        assert callable(getattr(block, 'init_weights', None))


def _identity_cases():
    cases = []
    for key in sorted(BLOCKS):
        cfg = BLOCKS[key]
        if MODELS.build(dict(cfg, in_channels=C)).identity_start:
            cases.append(key)
    return cases


IDENTITY = _identity_cases()


def test_identity_cases_cover_the_families():
    types = {BLOCKS[key]['type'] for key in IDENTITY}
    assert {'NonLocal2dBlock', 'SimplifiedNonLocal2d', 'GlobalContextBlock',
            'GCNLBlock'} <= types
    # 'mul' fusion starts at sigmoid(W x) x, not at x: no identity promised
    assert 'gc-att-mul' not in IDENTITY and 'gc-att-add' in IDENTITY


@pytest.mark.parametrize('name', IDENTITY)
def test_init_weights_restores_the_identity(name):
    block = build(name).eval()  # random weights everywhere, W_o / norms included
    x = torch.randn(2, C, 5, 6)
    with torch.no_grad():
        assert not torch.allclose(block(x), x, atol=1e-3)  # the random block acts
        block.init_weights()
        assert torch.equal(block(x), x)
        block.train()
        assert torch.equal(block(x), x)


def _attention_cases():
    return [key for key in sorted(BLOCKS)
            if hasattr(MODELS.get(BLOCKS[key]['type']), 'get_attention')]


def _unpadded_size(block, hw=(5, 6)):
    """The smallest map >= hw that a block padding to its groups (ISA) does not pad."""
    groups = getattr(getattr(block, 'attention', block), 'groups', (1, 1))
    return tuple(-(-n // g) * g for n, g in zip(hw, groups))


@pytest.mark.parametrize('name', _attention_cases())
def test_get_attention_is_a_row_normalised_map(name):
    block = build(name).eval()
    hw = _unpadded_size(block)
    x = torch.randn(2, C, *hw)
    with torch.no_grad():
        attn = block.get_attention(x)
    n = hw[0] * hw[1]
    assert attn.dim() == 4 and attn.shape[0] == 2, attn.shape
    # queries: the H x W positions, or 1 (query-independent); keys: a grid of positions
    assert attn.shape[2] in (1, n), attn.shape
    key_grid(attn.shape[3], hw)
    assert torch.isfinite(attn).all()
    if getattr(block, 'attention_normalised', True):
        assert (attn >= 0).all()
        torch.testing.assert_close(attn.sum(-1), torch.ones_like(attn.sum(-1)))
    else:
        assert not torch.allclose(attn.sum(-1), torch.ones_like(attn.sum(-1)))


PADDING_CASES = [key for key in _attention_cases()
                 if _unpadded_size(MODELS.build(dict(BLOCKS[key], in_channels=C))) != (5, 6)]


def test_padding_cases_include_isa():
    assert {'default-InterlacedSparseSelfAttention', 'default-ObjectContextPooling'} <= set(
        PADDING_CASES)


@pytest.mark.parametrize('name', PADDING_CASES)
def test_get_attention_on_a_padded_map_loses_the_padded_keys_weight(name):
    """ISA pads a 5 x 6 map to its groups; padded positions are keys in the forward
    pass, and the map drops them: rows sum to less than 1, never more."""
    block = build(name).eval()
    with torch.no_grad():
        attn = block.get_attention(torch.randn(2, C, 5, 6))
    assert attn.shape[2:] == (30, 30), attn.shape
    sums = attn.sum(-1)
    assert (attn >= 0).all() and (sums <= 1 + 1e-6).all() and (sums < 1 - 1e-3).any()


def _impl_cases():
    return [key for key in sorted(BLOCKS) if BLOCKS[key].get('impl', 'fused') == 'fused'
            and 'impl' in inspect.signature(MODELS.get(BLOCKS[key]['type'])).parameters]


@pytest.mark.parametrize('name', _impl_cases())
def test_impl_paths_agree(name):
    fused = MODELS.build(dict(BLOCKS[name], in_channels=C, impl='fused'))
    fused = randomise(fused, 0, std=0.2).eval()
    cfg = dict(BLOCKS[name], in_channels=C, impl='explicit')
    explicit = MODELS.build(cfg).eval()
    explicit.load_state_dict(copy.deepcopy(fused.state_dict()))
    assert fused.impl == 'fused' and explicit.impl == 'explicit'
    x = torch.randn(2, C, 5, 6)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), explicit(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('block_type', ['NonLocal2dBlock', 'SelfAttention2d',
                                        'InterlacedSparseSelfAttention',
                                        'BottleneckSelfAttention'])
def test_softmax_blocks_default_to_auto(block_type):
    """The blocks whose attention goes through softmax_attention let
    resolve_impl choose per call unless a config says otherwise."""
    block = MODELS.build(dict(BLOCKS[f'default-{block_type}'], in_channels=C))
    assert block.impl == 'auto'
