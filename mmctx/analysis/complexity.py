"""Parameters and FLOPs of mmctx models, attention products included.

FLOPs are counted by tracing (``mmengine.analysis.FlopAnalyzer``), which sees
every ``matmul`` / ``bmm`` / ``einsum`` of an attention block; hook-based
counters (which only visit ``nn.Module`` leaves such as convolutions) miss
them. The fused ``scaled_dot_product_attention`` op is unknown to mmengine, so
:func:`sdpa_flop_jit` counts it as the two products it stands for. One
multiply-add counts as one FLOP, the unit of the papers' GFLOPs columns.
"""
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import get_shape

__all__ = [
    'count_parameters', 'sdpa_flop_jit', 'count_flops', 'model_inputs',
    'model_complexity'
]


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
    """Parameters (total / trainable) and FLOPs of a built mmdet/mmseg model."""
    params = count_parameters(model)
    model.eval()
    wrapped, inputs = model_inputs(model, shape)
    with torch.no_grad():
        flops, _ = count_flops(wrapped, inputs)
    return dict(params=params['total'], trainable=params['trainable'],
                flops=flops)
