"""Timing of calls on the CPU or a GPU, interleaved so that machine load falls on all alike.

Shared by the peers benchmark (:mod:`.peers`), the Table 4 / Fig. 4 benchmark
(:func:`.benchmark.measure`) and the softmax-attention sweep behind
``impl='auto'`` (:func:`.benchmark.attention_impl_sweep`).
"""
import statistics
import time
from typing import Callable, Sequence

import torch

__all__ = ['time_interleaved']


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(runs: Sequence[Callable[[], None]], repeat: int = 5, warmup: int = 1,
                     device: str = 'cpu', host: bool = False):
    """Median seconds of each call in ``runs``, timed in turn: each round runs
    every call once, the order rotating by one per round, after ``warmup``
    rounds; so a change of machine load falls on all of them alike.

    With ``host``, returns ``(times, host_times)``: ``host_times`` are the
    medians of the time until each call returned, before the device is
    synchronised. On CUDA that is the host's share of the call (Python, op
    dispatch, kernel launches; the kernels run asynchronously): a call whose
    host time is close to its time is bound by the host, and then a peer
    that dispatches less is faster whatever the kernels. On the CPU the two
    are the same time.
    """
    dev = torch.device(device)
    for _ in range(warmup):
        for run in runs:
            run()
    times = [[] for _ in runs]
    host_times = [[] for _ in runs]
    for r in range(repeat):
        for i in range(len(runs)):
            j = (i + r) % len(runs)
            _sync(dev)
            start = time.perf_counter()
            runs[j]()
            host_times[j].append(time.perf_counter() - start)
            _sync(dev)
            times[j].append(time.perf_counter() - start)
    medians = [statistics.median(t) for t in times]
    return (medians, [statistics.median(t) for t in host_times]) if host else medians
