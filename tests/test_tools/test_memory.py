"""peak_memory: the allocator's running total, temporaries inside one op included."""
import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from mmctx.analysis.memory import allocation_events, peak_memory, running_peak

MIB = 2**20


@torch.library.custom_op('mmctx_test::double_with_scratch', mutates_args=())
def double_with_scratch(x: torch.Tensor, scratch_bytes: int) -> torch.Tensor:
    """One op that fills and drops a ``scratch_bytes`` buffer before it returns."""
    scratch = x.new_empty(scratch_bytes, dtype=torch.uint8).fill_(1)
    return x * 2 + (scratch.max() - 1)  # read it, so it is really made


def self_memory_peak(fn):
    """The former measurement: each op's self memory summed at the op's start."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    changes = sorted((e.time_range.start, e.self_cpu_memory_usage)
                     for e in prof.events() if e.self_cpu_memory_usage != 0)
    return running_peak(change for _, change in changes)


def test_running_total_is_exact_for_known_allocations():
    def fn():
        a = torch.empty(MIB, dtype=torch.uint8)
        b = torch.empty(2 * MIB, dtype=torch.uint8)
        del a
        c = torch.empty(MIB // 2, dtype=torch.uint8)
        del b, c

    # peak after b: 1 + 2 MiB; after freeing a and making c only 2.5 MiB
    assert peak_memory(fn) == 3 * MIB
    events = allocation_events(fn)
    assert [b for _, b in events] == [MIB, 2 * MIB, -MIB, MIB // 2, -2 * MIB, -(MIB // 2)]
    assert [t for t, _ in events] == sorted(t for t, _ in events)


def test_returned_tensor_counts_and_running_peak_starts_at_zero():
    def fn():
        scratch = torch.empty(3 * MIB, dtype=torch.uint8)
        del scratch
        return torch.empty(MIB, dtype=torch.uint8)

    assert peak_memory(fn) == 3 * MIB
    # frees of memory held before the call (negative steps) never lift the peak
    assert running_peak([-5, 3, 4, -10, 2]) == 2
    assert running_peak([-5, -1]) == 0


def test_temporary_inside_one_custom_op():
    x = torch.randn(256)
    scratch = 64 * MIB
    call = lambda: double_with_scratch(x, scratch)  # noqa: E731
    torch.testing.assert_close(call(), x * 2)
    assert peak_memory(call) >= scratch
    assert peak_memory(call) < scratch + MIB
    # the per-op self-memory sum nets the scratch buffer out
    assert self_memory_peak(call) < scratch / 10


def test_sdpa_math_fallback_on_a_strided_input():
    """A query whose last dim is strided makes SDPA on the CPU take its math
    path, which forms the (heads x N x N) score matrix inside the one call.
    """
    heads, n, d = 2, 1024, 32
    q = torch.randn(1, heads, d, n).transpose(-1, -2)  # last-dim stride n
    k, v = torch.randn(1, heads, n, d), torch.randn(1, heads, n, d)
    matrix = heads * n * n * 4
    with torch.no_grad():
        strided = peak_memory(lambda: F.scaled_dot_product_attention(q, k, v))
        contiguous = peak_memory(
            lambda: F.scaled_dot_product_attention(q.contiguous(), k, v))
        former = self_memory_peak(lambda: F.scaled_dot_product_attention(q, k, v))
    assert strided >= matrix
    # the fused kernel on unit-stride inputs keeps only blocks of the matrix
    assert contiguous < matrix / 4
    assert former < matrix / 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_peak_sees_the_temporary():
    x = torch.randn(256, device='cuda')
    scratch = 64 * MIB
    peak = peak_memory(lambda: double_with_scratch(x, scratch), device='cuda')
    assert scratch <= peak < scratch + 4 * MIB


def test_unknown_device_is_named():
    with pytest.raises(ValueError, match="device must be cpu or cuda, got 'meta'"):
        peak_memory(lambda: None, device='meta')
