"""Peak memory of a call, on the CPU or a CUDA device.

CUDA: the caching allocator's own peak counter
(``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``),
which sees every block the allocator hands out, temporaries inside one
kernel included.

CPU: PyTorch keeps no such counter, so the call runs under
``torch.profiler`` with ``profile_memory=True``. With it, PyTorch's CPU
allocator reports *every* allocation and every free as one ``[memory]``
record carrying its size (positive for an allocation, negative for a free)
and its time stamp. :func:`allocation_events` returns these records;
:func:`peak_memory` walks them in time order and keeps the running total's
maximum. Because each record is one call to the allocator, a temporary that
an op allocates and frees before it returns (the ``N x N`` matrix of
``scaled_dot_product_attention``'s math fallback, a scratch buffer made with
``new_empty``) is seen as it lives.

An earlier version summed each op's *self* memory (allocated minus freed,
children excluded) at the op's start time. That nets a temporary out (its
allocation is counted in a child op, its free in the parent, and the parent
starts first), so it reported 1 MiB for a strided SDPA call whose true peak
was 145 MiB. ``tests/test_tools/test_memory.py`` keeps such cases.

Not seen on the CPU: memory that a library takes from ``malloc`` directly,
outside PyTorch's allocator (e.g. a BLAS or oneDNN scratch buffer); process
RSS would see it, but RSS is not released eagerly and is shared with every
other thread, so it is not used here.
"""
from typing import Callable, List, Tuple

import torch
from torch.autograd import DeviceType
from torch.autograd.profiler_util import MEMORY_EVENT_NAME
from torch.profiler import ProfilerActivity, profile

__all__ = ['peak_memory', 'allocation_events', 'running_peak']

# Device types of the profiler's memory records that are host memory (the
# same set torch.autograd.profiler counts as ``cpu_memory_usage``).
_HOST_DEVICES = (DeviceType.CPU, DeviceType.MKLDNN, DeviceType.IDEEP)


def allocation_events(fn: Callable[[], object]) -> List[Tuple[int, int]]:
    """Every host allocation (+bytes) and free (-bytes) made while ``fn()`` runs.

    Returns ``(time_ns, bytes)`` pairs in time order (records with the same
    time stamp keep the order the profiler logged them in).
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    results = getattr(prof.profiler, 'kineto_results', None)
    if results is None:
        raise RuntimeError(
            'peak_memory: torch.profiler returned no allocation records '
            f'(torch {torch.__version__}); cannot measure CPU memory')
    records = [(event.start_ns(), index, event.nbytes())
               for index, event in enumerate(results.events())
               if event.name() == MEMORY_EVENT_NAME and event.device_type() in _HOST_DEVICES]
    records.sort()
    return [(time_ns, nbytes) for time_ns, _, nbytes in records]


def running_peak(changes) -> int:
    """Maximum of the running sum of ``changes`` (bytes), and at least 0.

    Frees of memory allocated before the measurement started make the sum
    negative; the peak is counted from what was held at the start.
    """
    held = peak = 0
    for change in changes:
        held += change
        peak = max(peak, held)
    return peak


def peak_memory(fn: Callable[[], object], device: str = 'cpu') -> int:
    """Bytes of tensor memory held at the peak of ``fn()``, beyond what was held before.

    Args:
        fn: the call to measure (its return value is dropped afterwards).
        device: ``'cpu'`` (allocation records of ``torch.profiler``) or a
            CUDA device (the caching allocator's peak counter).
    """
    dev = torch.device(device)
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        start = torch.cuda.memory_allocated(dev)
        fn()
        torch.cuda.synchronize(dev)
        return torch.cuda.max_memory_allocated(dev) - start
    if dev.type != 'cpu':
        raise ValueError(f'peak_memory: device must be cpu or cuda, got {device!r}')
    return running_peak(nbytes for _, nbytes in allocation_events(fn))
