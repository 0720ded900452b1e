"""Inference cost of context modules and decode heads (seed 004 Table 4 protocol).

Each entry is built from a config dict, run in inference on one random input,
and measured for peak memory (:func:`mmctx.analysis.memory.peak_memory`),
FLOPs (:func:`mmctx.analysis.complexity.count_flops`, attention products
included) and median wall time. Blocks with a fused attention path are run
with ``impl='fused'`` and ``impl='explicit'`` so the speed-up shows.
"""
import copy
import statistics
import time
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS

from .complexity import count_flops
from .memory import peak_memory

__all__ = ['BLOCK_SPECS', 'HEAD_SPECS', 'build_entry', 'measure', 'run_benchmark']

# Context blocks, seed 004 Fig. 4 protocol (default input 1 x 512 x 128 x 128).
# (name, config without in_channels)
BLOCK_SPECS = [
    ('NL (embedded Gaussian)', dict(type='NonLocal2dBlock')),
    ('SNL', dict(type='SimplifiedNonLocal2d')),
    ('GC (r=16)', dict(type='GlobalContextBlock', ratio=16)),
    ('GCNL', dict(type='GCNLBlock')),
    ('Bottleneck self-attention', dict(type='BottleneckSelfAttention')),
    ('ENL (efficient)', dict(type='EfficientNonLocal2d', mode='efficient')),
    ('ENL (efficient, DCT)',
     dict(type='EfficientNonLocal2d', mode='efficient', pos_enc='dct')),
    ('NL (explicit ENL family)', dict(type='EfficientNonLocal2d', mode='explicit')),
    ('SA', dict(type='SelfAttention2d')),
    ('ISA (8x8)', dict(type='InterlacedSparseSelfAttention')),
]

# Decode heads, seed 004 Table 4 protocol (default input 1 x 2048 x 128 x 128).
_HEAD = dict(channels=512, num_classes=19, in_index=0,
             norm_cfg=dict(type='BN', requires_grad=True))
HEAD_SPECS = [
    ('PPM', dict(type='mmseg.PSPHead', pool_scales=(1, 2, 3, 6), **_HEAD)),
    ('ASPP', dict(type='mmseg.ASPPHead', dilations=(1, 12, 24, 36), **_HEAD)),
    ('DANet', dict(type='mmseg.DAHead', pam_channels=64, **_HEAD)),
    ('RCCA', dict(type='mmseg.CCHead', recurrence=2, **_HEAD)),
    ('CGNL', dict(type='mmseg.CGNLHead', **_HEAD)),
    ('Efficient Attention', dict(type='mmseg.EfficientAttentionHead', **_HEAD)),
    ('Base-OC (SA)', dict(type='mmseg.BaseOCHead', attention='sa', **_HEAD)),
    ('Base-OC (ISA)', dict(type='mmseg.BaseOCHead', attention='isa', **_HEAD)),
    ('Pyramid-OC (SA)', dict(type='mmseg.PyramidOCHead', attention='sa', **_HEAD)),
    ('Pyramid-OC (ISA)', dict(type='mmseg.PyramidOCHead', attention='isa', **_HEAD)),
    ('ASP-OC (SA)', dict(type='mmseg.ASPOCHead', attention='sa', **_HEAD)),
    ('ASP-OC (ISA)', dict(type='mmseg.ASPOCHead', attention='isa', **_HEAD)),
]


class _HeadForward(nn.Module):
    """A decode head called on a single feature map, as the benchmark feeds it."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head([x])


def build_entry(cfg: dict, in_channels: int, impl: Optional[str] = None) -> nn.Module:
    """Build a block or head for ``in_channels`` inputs, in eval mode, BN not synced."""
    cfg = copy.deepcopy(cfg)
    cfg['in_channels'] = in_channels
    if impl is not None:
        cfg['impl'] = impl
    module = revert_sync_batchnorm(MODELS.build(cfg))
    if hasattr(module, 'cls_seg'):
        module = _HeadForward(module)
    return module.eval()


def supports_impl(cfg: dict) -> bool:
    """Whether the block's constructor takes ``impl`` (a fused attention path)."""
    import inspect
    cls = MODELS.get(cfg['type'])
    return 'impl' in inspect.signature(cls.__init__).parameters


def measure(module: nn.Module, x: torch.Tensor, repeat: int = 5,
            warmup: int = 1) -> Dict[str, float]:
    """Peak memory (MB), GFLOPs and median time (ms) of ``module(x)`` in inference."""
    device = x.device

    def run():
        with torch.no_grad():
            module(x)

    for _ in range(warmup):
        run()
    memory = peak_memory(run, device=str(device))
    times = []
    for _ in range(repeat):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        flops, _ = count_flops(module, (x, ))
    return dict(memory_mb=memory / 2**20, gflops=flops / 1e9,
                time_ms=statistics.median(times) * 1e3)


def run_benchmark(specs: Sequence, shape: Sequence[int], device: str = 'cpu',
                  repeat: int = 5, compare_impl: bool = True) -> List[Dict]:
    """Measure every (name, cfg) of ``specs`` on a random input of ``shape`` (B, C, H, W).

    Returns one row per entry (two for blocks with a fused path: fused and
    explicit, the fused row carrying the speed-up over the explicit one).
    """
    torch.manual_seed(0)
    x = torch.randn(*shape, device=device)
    rows = []
    for name, cfg in specs:
        impls = ['fused', 'explicit'] if compare_impl and supports_impl(cfg) else [None]
        results = {}
        for impl in impls:
            module = build_entry(cfg, shape[1], impl).to(device)
            results[impl] = measure(module, x, repeat=repeat)
            del module
        for impl, result in results.items():
            row = dict(module=name, impl=impl or '-', input='x'.join(map(str, shape)),
                       device=str(device), **result)
            if impl == 'fused':
                row['speedup'] = results['explicit']['time_ms'] / result['time_ms']
            rows.append(row)
    return rows
