"""Peak memory of a call, on the CPU or a CUDA device.

CUDA: the caching allocator's own peak counter. CPU: PyTorch keeps no such
counter, so the call runs under ``torch.profiler`` with ``profile_memory``:
every op reports the bytes it allocated minus those it freed (its *self*
memory, children excluded) and every free outside an op is a ``[memory]``
event; the running sum of these, in time order, peaks where the call held
the most tensor memory. A temporary allocated and freed inside one leaf op
is not seen, so the figure is a lower bound on the true peak, exact for the
tensors that ops return (attention matrices among them).
"""
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

__all__ = ['peak_memory']


def peak_memory(fn: Callable[[], object], device: str = 'cpu') -> int:
    """Bytes of tensor memory held at the peak of ``fn()``, beyond what was held before."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    changes = sorted((event.time_range.start, event.self_cpu_memory_usage)
                     for event in prof.events()
                     if event.self_cpu_memory_usage != 0)
    held = peak = 0
    for _, change in changes:
        held += change
        peak = max(peak, held)
    return peak
