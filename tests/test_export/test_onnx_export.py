"""ONNX export of every registered mmctx block, decode head and neck.

Each module is built small, its weights randomised (zero-initialised output
convs and scales would make the residual blocks the identity), exported with
``torch.onnx.export`` (opset 17, batch, H and W dynamic) at one size and run
in onnxruntime at two other sizes; the outputs must equal PyTorch's eager
outputs at those sizes within 1e-4. The table of docs/export.md lists what
this test measures (``python tests/test_export/test_onnx_export.py`` prints
it).

The mode-by-mode export of the non-local, GC, GCNL and bottleneck
self-attention blocks is in tests/test_models/test_layers/test_attention_block_contract.py;
here each registered module has its default configuration (plus the
relation variants of the OCNet blocks and heads, which that file lacks).
"""
import io
import warnings

import pytest
import torch
import torch.nn as nn
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

import mmctx  # noqa: F401  (registration)

from layer_helpers import randomise  # tests/ is on sys.path (tests/conftest.py)

C = 16  # channels of blocks and heads
NECK_C = 8  # channels of every neck level
TOL = 1e-4

# sizes (H, W) of the block / head input: traced at the first, run at the
# other two (one not divisible by the ISA groups / pyramid regions)
BLOCK_SIZES = [(8, 8), (12, 20), (9, 13)]
HEAD_SIZES = [(12, 12), (16, 20), (13, 18)]
# neck sizes are those of the finest level; level i is halved i times
NECK_SIZES = [(32, 32), (48, 64), (40, 24)]

ISA = dict(groups=(2, 2))

# name -> (kind, config); kind picks the registry, the input and the sizes
CASES = {
    # mmctx/models/layers (root MODELS), input (B, C, H, W)
    'NonLocal2dBlock': ('block', dict(type='NonLocal2dBlock')),
    'SimplifiedNonLocal2d': ('block', dict(type='SimplifiedNonLocal2d')),
    'GlobalContextBlock': ('block', dict(type='GlobalContextBlock', ratio=4)),
    'GCNLBlock': ('block', dict(type='GCNLBlock', num_heads=4)),
    'BottleneckSelfAttention': ('block', dict(
        type='BottleneckSelfAttention', num_heads=2)),
    'EfficientNonLocal2d': ('block', dict(type='EfficientNonLocal2d')),
    'EfficientNonLocal2d-dct': ('block', dict(
        type='EfficientNonLocal2d', pos_enc='dct', dct_size=3)),
    'EfficientNonLocal2d-explicit-exp-l1': ('block', dict(
        type='EfficientNonLocal2d', mode='explicit', similarity='exp',
        pos_enc='l1')),
    'SelfAttention2d': ('block', dict(type='SelfAttention2d')),
    'InterlacedSparseSelfAttention': ('block', dict(
        type='InterlacedSparseSelfAttention', **ISA)),
    'InterlacedSparseSelfAttention-official': ('block', dict(
        type='InterlacedSparseSelfAttention', variant='official', **ISA)),
    'ObjectContextPooling-sa': ('block', dict(
        type='ObjectContextPooling', attention='sa')),
    'ObjectContextPooling-isa': ('block', dict(
        type='ObjectContextPooling', attention='isa', **ISA)),
    'ResidualObjectContext-isa': ('block', dict(
        type='ResidualObjectContext', attention='isa', **ISA)),
    'CompactGeneralizedNonLocal2d': ('block', dict(
        type='CompactGeneralizedNonLocal2d', groups=4)),
    'CompactGeneralizedNonLocal2d-gaussian-scale': ('block', dict(
        type='CompactGeneralizedNonLocal2d', groups=4, kernel='gaussian',
        use_scale=True)),
    'EfficientAttention2d': ('block', dict(type='EfficientAttention2d', num_heads=4)),
    'GloReUnit': ('block', dict(type='GloReUnit')),
    'AttentionalClassFeature': ('block', dict(
        type='AttentionalClassFeature', num_classes=3)),
    # mmctx/models/decode_heads (mmseg MODELS), input [(B, C, H, W)]
    'ContextBlockHead': ('head', dict(type='ContextBlockHead')),
    'GCNLHead': ('head', dict(type='GCNLHead', num_heads=4)),
    'ACFHead': ('head', dict(type='ACFHead')),
    'CGNLHead': ('head', dict(type='CGNLHead', groups=4)),
    'GloReHead': ('head', dict(type='GloReHead')),
    'EfficientAttentionHead': ('head', dict(
        type='EfficientAttentionHead', num_heads=4)),
    'BaseOCHead-sa': ('head', dict(type='BaseOCHead', attention='sa')),
    'BaseOCHead-isa-2x': ('head', dict(
        type='BaseOCHead', attention='isa', ocp_cfg=ISA, downsample=2)),
    'PyramidOCHead-sa': ('head', dict(
        type='PyramidOCHead', attention='sa', pyramid_scales=(1, 2, 3))),
    'PyramidOCHead-isa-official': ('head', dict(
        type='PyramidOCHead', attention='isa', ocp_cfg=ISA,
        pyramid_scales=(1, 2), variant='official')),
    'ASPOCHead-isa': ('head', dict(
        type='ASPOCHead', attention='isa', ocp_cfg=ISA, dilations=(2, 3, 4))),
    'ASPOCHead-sa-official': ('head', dict(
        type='ASPOCHead', attention='sa', dilations=(2, 3, 4),
        variant='official')),
    # mmctx/models/necks (mmdet MODELS), input: a tuple of levels
    'C4SelfAttentionNeck': ('neck', dict(
        type='C4SelfAttentionNeck', in_channels=NECK_C, attention_cfg=dict(
            type='BottleneckSelfAttention', num_heads=2))),
    'EBFPN': ('neck', dict(
        type='EBFPN', in_channels=NECK_C, num_levels=4, refine_cfg=dict(
            type='GCNLBlock', reduction=1, num_heads=2, sub_sample=True,
            pool_order='before'))),
    'ENLFPN': ('neck', dict(
        type='ENLFPN', in_channels=[NECK_C] * 4, out_channels=NECK_C,
        num_outs=5)),
    'SAFPN': ('neck', dict(
        type='SAFPN', in_channels=[NECK_C] * 4, out_channels=NECK_C,
        num_outs=5, attention_cfg=dict(
            type='BottleneckSelfAttention', num_heads=2))),
}

# cases that do not export with dynamic H, W, and the error that says why
NOT_EXPORTED = {
    # mmdet's BFP.forward (inherited): gathers the levels to the refine
    # level's size with F.adaptive_max_pool2d(output_size=<a traced size>);
    # torch's ONNX symbolic of adaptive pooling needs a constant output size
    'EBFPN': (torch.onnx.errors.SymbolicValueError,
              'adaptive pooling, since output_size is not constant'),
}

# the registries the cases are built from, by the mmctx package they cover
PACKAGES = {'block': 'mmctx.models.layers',
            'head': 'mmctx.models.decode_heads',
            'neck': 'mmctx.models.necks'}
SCOPES = {'block': None, 'head': 'mmseg', 'neck': 'mmdet'}


def _registry(kind):
    if kind == 'head':
        from mmseg.registry import MODELS
    elif kind == 'neck':
        from mmdet.registry import MODELS
    else:
        MODELS = ROOT_MODELS
    return MODELS


class _Head(nn.Module):
    """A decode head takes a list of levels: export it on one level."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x):
        return self.head([x])


class _Neck(nn.Module):
    """A neck takes a tuple of levels and returns one: flat in, flat out."""

    def __init__(self, neck):
        super().__init__()
        self.neck = neck

    def forward(self, *levels):
        return tuple(self.neck(levels))


def build(name):
    """The module of case ``name`` in eval mode, weights N(0, 0.2^2)."""
    kind, cfg = CASES[name]
    cfg = dict(cfg)
    if kind == 'block':
        cfg['in_channels'] = C
    elif kind == 'head':
        # BN as in every config (the official ASP-OC head builds its norm
        # layers from norm_cfg directly: None is refused)
        cfg.update(in_channels=C, channels=C, num_classes=3,
                   norm_cfg=dict(type='BN'))
    with DefaultScope.overwrite_default_scope(SCOPES[kind]):
        module = _registry(kind).build(cfg)
    randomise(module, 0, std=0.2)
    if kind == 'head':
        module = _Head(module)
    elif kind == 'neck':
        module = _Neck(module)
    return module.eval()


def inputs(name, hw, seed):
    """Input tensors of case ``name`` at the (finest) size ``hw``."""
    kind = CASES[name][0]
    gen = torch.Generator().manual_seed(seed)
    if kind != 'neck':
        return (torch.randn(2, C, *hw, generator=gen), )
    levels = 1 if name == 'C4SelfAttentionNeck' else 4
    return tuple(
        torch.randn(2, NECK_C, hw[0] >> i, hw[1] >> i, generator=gen)
        for i in range(levels))


def sizes(name):
    return {'block': BLOCK_SIZES, 'head': HEAD_SIZES,
            'neck': NECK_SIZES}[CASES[name][0]]


def export(module, example):
    """ONNX bytes of ``module`` traced on ``example``; batch, H, W dynamic."""
    names = [f'x{i}' for i in range(len(example))]
    dynamic = {n: {0: 'b', 2: f'h{i}', 3: f'w{i}'} for i, n in enumerate(names)}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings of the shape checks
        torch.onnx.export(module, example, buf, dynamo=False, opset_version=17,
                          input_names=names, dynamic_axes=dynamic)
    return buf.getvalue()


def max_abs_diffs(name):
    """Export case ``name`` at its first size; per other size, the largest
    absolute difference between onnxruntime's and PyTorch's outputs and the
    largest absolute eager output (a scale for the difference)."""
    import onnxruntime as ort
    module = build(name)
    traced_hw, *other = sizes(name)
    model = export(module, inputs(name, traced_hw, 0))
    session = ort.InferenceSession(model, providers=['CPUExecutionProvider'])
    results = []
    for seed, hw in enumerate(other, 1):
        xs = inputs(name, hw, seed)
        with torch.no_grad():
            ref = module(*xs)
        ref = ref if isinstance(ref, tuple) else (ref, )
        got = session.run(None, {f'x{i}': x.numpy() for i, x in enumerate(xs)})
        assert len(got) == len(ref), (name, hw)
        diff = 0.0
        for r, g in zip(ref, got):
            assert tuple(g.shape) == tuple(r.shape), (name, hw, g.shape, r.shape)
            diff = max(diff, (torch.from_numpy(g) - r).abs().max().item())
        results.append((hw, diff, max(r.abs().max().item() for r in ref)))
    return results


def test_every_registered_module_has_a_case():
    covered = {kind: {cfg['type'] for k, cfg in CASES.values() if k == kind}
               for kind in PACKAGES}
    for kind, package in PACKAGES.items():
        registered = {
            name for name, cls in _registry(kind).module_dict.items()
            if cls.__module__.startswith(package + '.')}
        assert registered, (kind, package)
        missing = registered - covered[kind]
        assert not missing, f'{package}: no ONNX export case for {sorted(missing)}'


@pytest.mark.parametrize('name', sorted(CASES))
def test_onnx_export_matches_pytorch_at_other_sizes(name):
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    if name in NOT_EXPORTED:
        error, message = NOT_EXPORTED[name]
        with pytest.raises(error, match=message):
            max_abs_diffs(name)
        return
    results = max_abs_diffs(name)
    assert len(results) == 2
    for hw, diff, scale in results:
        # the randomised modules act: a wrong output would not pass as small
        assert scale > 10 * TOL, (name, hw, scale)
        assert diff <= TOL, f'{name} at {hw}: max abs diff {diff:.2e} > {TOL}'


def test_export_sees_the_size_a_shape_branch_would_freeze():
    """The check is sharp: a module whose output size is a python int taken
    from the traced input fails it (ONNX keeps the int as a constant)."""

    class FrozenResize(nn.Module):
        def forward(self, x):
            h, w = int(x.shape[2]), int(x.shape[3])
            return nn.functional.interpolate(x[..., ::2, ::2], size=(h, w))

    import onnxruntime as ort
    model = export(FrozenResize(), (torch.randn(2, C, 8, 8), ))
    session = ort.InferenceSession(model, providers=['CPUExecutionProvider'])
    x = torch.randn(2, C, 12, 20)
    got = session.run(None, {'x0': x.numpy()})[0]
    assert got.shape[-2:] != tuple(x.shape[-2:])


if __name__ == '__main__':  # the table of docs/export.md
    print('| module | exports | max abs diff (size 1) | max abs diff (size 2) |')
    print('|---|---|---|---|')
    for case in CASES:
        try:
            res = max_abs_diffs(case)
            cells = [f'{d:.1e} at {h}x{w} (max |y| {s:.2g})'
                     for (h, w), d, s in res]
            ok = 'yes' if all(d <= TOL for _, d, _ in res) else 'NO (diff)'
        except Exception as e:  # noqa: BLE001  (report, do not stop)
            ok, cells = 'NO', [f'{type(e).__name__}: {str(e)[:90]}', '-']
        print(f'| {case} | {ok} | {cells[0]} | {cells[1]} |', flush=True)
