"""Parameters and FLOPs of mmctx models, attention products included.

FLOPs are counted by tracing (``mmengine.analysis.FlopAnalyzer``), which sees
every ``matmul`` / ``bmm`` / ``einsum`` of an attention block; hook-based
counters (which only visit ``nn.Module`` leaves such as convolutions) miss
them. The fused ``scaled_dot_product_attention`` op is unknown to mmengine, so
:func:`sdpa_flop_jit` counts it as the two products it stands for.

Unit: one multiply-add counts as one FLOP (mmdet's / mmengine's convention,
the unit of the detection papers' GFLOPs columns, e.g. the GCNL paper's
RetinaNet 239 G at 1280 x 800). OCNet's Table 4 counts a multiply and an add
as two: its GFLOPs are twice our count (``mmctx.analysis.benchmark``).
:func:`flops_by_kind` splits a count into conv / linear layers (what a
hook-based counter sees), attention products and the rest (norms, pooling,
upsampling), so a figure can be given in either convention.

:func:`count_macs` counts the same products at dispatch
(``torch.utils.flop_counter``) on fake tensors: shapes only, no arithmetic,
so a head at OCNet's 2048 x 128 x 128 is counted in a second or two; it
agrees with the traced count's conv / linear and attention parts
(``tests/test_tools/test_complexity.py``).
"""
import itertools
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = [
    'count_parameters', 'sdpa_flop_jit', 'count_flops', 'flops_by_kind', 'count_macs',
    'model_inputs', 'model_complexity'
]

# Operator names as FlopAnalyzer.by_operator() reports them.
CONV_LINEAR_OPS = ('conv', 'linear', 'addmm')
ATTENTION_OPS = ('matmul', 'bmm', 'mm', 'einsum', 'scaled_dot_product_attention')


def count_parameters(model: nn.Module) -> Dict[str, int]:
    """All parameters and the trainable ones (``requires_grad``).

    The papers' parameter columns count trainable parameters: mmdet's
    ``frozen_stages=1`` freezes the ResNet stem and res2 (0.23 M for a
    ResNet-50), which is the gap between a plain sum and the papers' numbers.
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return dict(total=total, trainable=trainable)


def sdpa_flop_jit(inputs, outputs) -> int:
    """FLOPs of ``softmax(q k^T) v``: (Nq x d) x (d x Nk) plus (Nq x Nk) x (Nk x dv)."""
    q, k, v = (get_shape(t) for t in inputs[:3])
    batch = 1
    for size in q[:-2]:
        batch *= size
    n_q, d = q[-2], q[-1]
    n_k, d_v = k[-2], v[-1]
    return batch * n_q * n_k * (d + d_v)


def count_flops(model: nn.Module, inputs: Tuple) -> Tuple[int, FlopAnalyzer]:
    """Total FLOPs of ``model(*inputs)`` and the analyzer (per-module counts)."""
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total(), analyzer


def flops_by_kind(analyzer: FlopAnalyzer) -> Dict[str, int]:
    """A traced count split by operator: ``conv_linear``, ``attention``, ``other``.

    ``conv_linear`` is what the hook-based counters of the papers' era saw
    (convolution and linear layers); ``attention`` the matrix products
    (``matmul`` / ``bmm`` / ``mm`` / ``einsum`` and the fused SDPA op), which
    in these models are the attention products and the context products of
    GC / CGNL / efficient attention; ``other`` norms, pooling and upsampling.
    ``total`` is their sum (``analyzer.total()``).
    """
    kinds = dict(conv_linear=0, attention=0, other=0)
    for op, count in analyzer.by_operator().items():
        if op in CONV_LINEAR_OPS:
            kinds['conv_linear'] += count
        elif op in ATTENTION_OPS:
            kinds['attention'] += count
        else:
            kinds['other'] += count
    kinds['total'] = sum(kinds.values())
    return kinds


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None,
                    **kwargs) -> int:
    """FLOPs (2 per multiply-add) of the CPU fused SDPA kernel, which
    ``torch.utils.flop_counter`` has no formula for."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


_EXTRA_FLOP_FORMULAS = {}
if hasattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu'):
    _EXTRA_FLOP_FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = \
        _cpu_sdpa_flops


def count_macs(model: nn.Module, inputs: Tuple, fake: bool = True,
               per_module: bool = False) -> Dict[str, int]:
    """Multiply-adds of ``model(*inputs)`` counted at dispatch, by kind.

    Uses ``torch.utils.flop_counter.FlopCounterMode``, which counts the matrix
    products and convolutions that run (``mm`` / ``addmm`` / ``bmm`` /
    ``baddbmm``, convolution, the SDPA kernels) at 2 FLOPs per multiply-add;
    here halved to multiply-adds. Returns ``total``, ``conv_linear`` (the
    products inside ``nn.Conv*`` / ``nn.Linear`` layers) and ``attention``
    (the other products: attention and context products). Norms, pooling,
    upsampling and element-wise ops are not counted.

    Args:
        model: the module (left unchanged).
        inputs: its positional tensor inputs.
        fake: run on fake tensors (``torch._subclasses.FakeTensorMode``: the
            inputs', parameters' and buffers' shapes and devices without their
            data, so no arithmetic and no memory; the code paths are those of
            the real device). ``False`` counts a real run.
        per_module: also return ``modules``: the multiply-adds of every
            submodule by its name in ``model.named_modules()``.
    """
    root = type(model).__name__
    layers = {f'{root}.{name}' for name, m in model.named_modules()
              if name and isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))}
    counter = FlopCounterMode(display=False, depth=None, custom_mapping=_EXTRA_FLOP_FORMULAS)
    if fake:
        from torch._subclasses.fake_tensor import FakeTensorMode
        mode = FakeTensorMode()
        state = {name: mode.from_tensor(t) for name, t in
                 itertools.chain(model.named_parameters(), model.named_buffers())}
        args = tuple(mode.from_tensor(x) if isinstance(x, torch.Tensor) else x
                     for x in inputs)
        with mode, torch.no_grad(), counter:
            torch.func.functional_call(model, state, args)
    else:
        with torch.no_grad(), counter:
            model(*inputs)
    counts = counter.get_flop_counts()
    total = counter.get_total_flops()
    conv_linear = sum(sum(ops.values()) for name, ops in counts.items() if name in layers)
    result = dict(total=total // 2, conv_linear=conv_linear // 2,
                  attention=(total - conv_linear) // 2)
    if per_module:
        prefix = root + '.'
        result['modules'] = {name[len(prefix):]: sum(ops.values()) // 2
                             for name, ops in counts.items() if name.startswith(prefix)}
    return result


class TensorForward(nn.Module):
    """Runs an mmdet/mmseg model in ``'tensor'`` mode on fixed data samples.

    Tracing needs a module whose forward takes tensors only; this one binds
    the data samples, as mmdet's ``get_flops.py`` does with ``partial``.
    """

    def __init__(self, model: nn.Module, data_samples) -> None:
        super().__init__()
        self.model = model
        self.data_samples = data_samples

    def forward(self, inputs: torch.Tensor):
        return self.model(inputs, self.data_samples, mode='tensor')


def model_inputs(model: nn.Module, shape: Sequence[int]):
    """A one-image batch of ``shape`` (H, W) through the model's preprocessor.

    Returns a :class:`TensorForward` around ``model`` and its input tuple.
    """
    h, w = shape
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    sample = _blank_data_sample(model, h, w)
    data = model.data_preprocessor(
        dict(inputs=[image], data_samples=[sample]), False)
    return TensorForward(model, data['data_samples']), (data['inputs'], )


def _blank_data_sample(model: nn.Module, h: int, w: int):
    """A data sample of the model's task carrying only the image meta."""
    meta = dict(
        img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
        scale_factor=(1.0, 1.0), flip=False, flip_direction=None)
    if type(model).__module__.startswith('mmseg'):
        from mmseg.structures import SegDataSample
        return SegDataSample(metainfo=meta)
    from mmdet.structures import DetDataSample
    return DetDataSample(metainfo=meta)


def model_complexity(model: nn.Module, shape: Sequence[int]) -> Dict[str, int]:
    """Parameters (total / trainable) and FLOPs of a built mmdet/mmseg model.

    ``flops`` counts every traced multiply-add (attention products included);
    ``flops_conv`` only those of conv / linear layers (:func:`flops_by_kind`),
    close to what a hook-based counter such as mmcv's reports (it visits
    module leaves and so misses the attention products).
    """
    params = count_parameters(model)
    model.eval()
    wrapped, inputs = model_inputs(model, shape)
    with torch.no_grad():
        flops, analyzer = count_flops(wrapped, inputs)
    return dict(params=params['total'], trainable=params['trainable'],
                flops=flops, flops_conv=flops_by_kind(analyzer)['conv_linear'])
