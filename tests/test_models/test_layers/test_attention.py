"""mmctx.models.layers.attention (softmax attention, fused and explicit) and
mmctx.models.layers.checks (the blocks' shared argument checks)."""
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmctx.analysis.memory import peak_memory
from mmctx.models.layers import attention as attention_module
from mmctx.models.layers.attention import (attention_matrix, check_divisible, check_impl,
                                           pads_to_one_width, resolve_impl, softmax_attention)
from mmctx.models.layers.checks import (check_channels, check_choice, check_int,
                                        check_norm_cfg, check_probability,
                                        check_reduction)


def _slow_attention(q, k, v, scale, bias=None):
    """softmax(s q k^T + b) v with loops over queries and keys, float64."""
    q, k, v = q.double(), k.double(), v.double()
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=torch.float64)
    for idx in torch.cartesian_prod(*[torch.arange(n) for n in q.shape[:-2]]).reshape(
            -1, q.dim() - 2).tolist():
        idx = tuple(idx)
        for i in range(q.shape[-2]):
            logits = []
            for j in range(k.shape[-2]):
                s = scale * float(q[idx + (i, )] @ k[idx + (j, )])
                if bias is not None:
                    s += float(bias[idx + (i, j)])
                logits.append(s)
            m = max(logits)
            e = [math.exp(s - m) for s in logits]
            z = sum(e)
            out[idx + (i, )] = sum(e[j] / z * v[idx + (j, )] for j in range(len(e)))
    return out


def _inputs(std=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, 7, 4, generator=g) * std
    k = torch.randn(2, 3, 9, 4, generator=g) * std
    v = torch.randn(2, 3, 9, 5, generator=g)
    bias = torch.randn(2, 3, 7, 9, generator=g)
    return q, k, v, bias


@pytest.mark.parametrize('impl', ['fused', 'explicit'])
@pytest.mark.parametrize('with_bias', [False, True])
def test_softmax_attention_matches_slow_reference(impl, with_bias):
    q, k, v, bias = _inputs()
    bias = bias if with_bias else None
    ref = _slow_attention(q, k, v, 0.4, bias)
    out = softmax_attention(q, k, v, 0.4, bias, impl=impl)
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    # positional call of the public signature (other blocks use it so)
    torch.testing.assert_close(softmax_attention(q, k, v, 0.4, bias, 0.0, impl), out)
    attn = attention_matrix(q, k, 0.4, bias)
    torch.testing.assert_close((attn @ v).double(), ref, rtol=1e-5, atol=1e-5)


class _NxNTensors(TorchDispatchMode):
    """Distinct storages of at least ``size`` elements that ops return."""

    def __init__(self, size):
        super().__init__()
        self.size, self.ptrs = size, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.numel() >= self.size:
                self.ptrs.add(t.untyped_storage().data_ptr())
        return out


def test_explicit_forms_one_logit_matrix_besides_the_softmax():
    """Scaling q (not the N x N_k product) and adding the bias in place: the
    explicit path allocates the logits and the softmax, nothing else that
    large (a scaled copy and a biased copy of the logits were two more)."""
    n = 64
    q, k = torch.randn(1, 2, n, 8), torch.randn(1, 2, n, 8)
    bias = torch.randn(1, 2, n, n)
    with _NxNTensors(2 * n * n) as spy:
        attention_matrix(q, k, 0.3, bias)
    assert len(spy.ptrs) == 2


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('impl', ['fused', 'explicit'])
@pytest.mark.parametrize('autocast', [False, True])
def test_half_precision_matches_float32(dtype, impl, autocast):
    """Ordinary inputs: within half-precision rounding of float32."""
    q, k, v, bias = _inputs()
    ref = softmax_attention(q, k, v, 0.5, bias, impl='explicit')
    if autocast:
        with torch.autocast('cpu', dtype=dtype):
            out = softmax_attention(q, k, v, 0.5, bias.to(dtype), impl=impl)
    else:
        out = softmax_attention(q.to(dtype), k.to(dtype), v.to(dtype), 0.5,
                                bias.to(dtype), impl=impl)
    assert out.dtype == dtype
    tol = 2e-2 if dtype == torch.float16 else 8e-2
    torch.testing.assert_close(out.float(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('autocast', [False, True])
def test_half_precision_large_logits_stay_finite(dtype, autocast):
    """Inputs of std 300: q k^T reaches ~1e5-1e6, beyond float16's 65504. The
    explicit path computes logits and softmax in float32 (as SDPA does) and
    stays finite and close to the float32 result, like the fused path."""
    q, k, v, _ = _inputs(std=300.0)
    naive = torch.matmul(q.to(dtype), k.to(dtype).transpose(-2, -1))
    if dtype == torch.float16:
        assert not torch.isfinite(naive).all()  # what the product alone does
    ref = softmax_attention(q, k, v, 1.0, impl='explicit')
    for impl in ('fused', 'explicit'):
        if autocast:
            with torch.autocast('cpu', dtype=dtype):
                out = softmax_attention(q, k, v, 1.0, impl=impl)
                attn = attention_matrix(q, k, 1.0)
        else:
            out = softmax_attention(q.to(dtype), k.to(dtype), v.to(dtype), 1.0, impl=impl)
            attn = attention_matrix(q.to(dtype), k.to(dtype), 1.0)
        assert out.dtype == attn.dtype == dtype
        assert torch.isfinite(out).all() and torch.isfinite(attn).all(), impl
        torch.testing.assert_close(attn.float().sum(-1), torch.ones(2, 3, 7),
                                   rtol=2e-2, atol=2e-2)
        # std-300 logits: the softmax is one-hot up to rounding. Rounding q
        # and k to half moves a logit by up to a few hundred, so a query
        # whose two largest logits are closer may pick either key: compare
        # the queries whose top-2 gap is far beyond that
        top2 = torch.matmul(q, k.transpose(-2, -1)).topk(2).values
        decisive = (top2[..., 0] - top2[..., 1] > 3000)[..., None]
        assert decisive.float().mean() > 0.7
        torch.testing.assert_close(torch.where(decisive, out.float(), ref),
                                   ref, rtol=3e-2, atol=3e-2)


def test_half_precision_gradients_are_finite():
    q, k, v, _ = _inputs(std=300.0)
    q = q.half().requires_grad_()
    out = softmax_attention(q, k.half(), v.half(), 1.0, impl='explicit')
    out.float().sum().backward()
    assert torch.isfinite(q.grad).all()


# ------------------------------------------------------------- argument checks
@pytest.mark.parametrize('value', [0, -4, 2.0, 1.5, True, '8', None])
def test_check_int_names_argument_and_value(value):
    with pytest.raises(ValueError, match=r'key_channels must be an int >= 1, got ' +
                       repr(value).replace('.', r'\.')):
        check_int('key_channels', value)
    with pytest.raises(ValueError, match='in_channels'):
        check_channels('in_channels', value)


def test_checks_accept_good_values():
    assert check_int('n', 3) == 3 and check_int('n', 0, minimum=0) == 0
    assert check_reduction(4, 16, exact=True) == 4
    assert check_reduction(3, 16) == 3  # floor division allowed unless exact
    assert check_choice('mode', 'a', ('a', 'b')) == 'a'
    assert check_probability('attn_drop', 0) == 0.0
    check_divisible(16, 4)
    assert check_impl('explicit') == 'explicit'
    assert check_norm_cfg(None) is None
    assert check_norm_cfg(dict(type='BN')) == dict(type='BN')
    assert check_norm_cfg(dict(type=torch.nn.BatchNorm2d))['type'] is torch.nn.BatchNorm2d


@pytest.mark.parametrize('call,words', [
    (lambda: check_reduction(2.0, 16), r'reduction=2\.0'),
    (lambda: check_reduction(32, 16), r'reduction=32 .*in_channels=16'),
    (lambda: check_reduction(3, 16, exact=True), r'reduction=3 .*dividing in_channels=16'),
    (lambda: check_divisible(16, 3, 'inner'), r'num_heads=3 .*inner=16'),
    (lambda: check_divisible(16, 2.0), r'num_heads=2\.0'),
    (lambda: check_choice('pool_order', 'middle', ('before', 'after')),
     r"pool_order must be one of \('before', 'after'\), got 'middle'"),
    (lambda: check_probability('attn_drop', 1.0), r'attn_drop .*got 1\.0'),
    (lambda: check_probability('attn_drop', '0.1'), r"attn_drop .*got '0\.1'"),
    (lambda: check_impl('flash'), r"impl must be one of .*'flash'"),
    (lambda: check_norm_cfg(dict(type='BatchNorm9d')), r"norm_cfg: unknown norm type 'BatchNorm9d'"),
    (lambda: check_norm_cfg(dict(eps=1e-3)), r'norm_cfg must be None or a dict with a "type"'),
    (lambda: check_norm_cfg('BN'), r'norm_cfg must be None or a dict'),
])
def test_checks_reject_with_a_clear_message(call, words):
    with pytest.raises(ValueError, match=words):
        call()


# --- impl='auto': the rule of resolve_impl, at the shapes the blocks meet
# (groups, Nq, Nk, E, Ev) -> the path the rule names for float32 on the CPU
AUTO_CPU_FLOAT32 = [
    ((1, 4096, 4096, 128, 128), 'fused'),  # NL embedded Gaussian, C=256, 64x64
    ((1, 3400, 3400, 512, 512), 'fused'),  # NL embedded Gaussian, C=1024, 50x68
    ((1, 4096, 4096, 256, 128), 'fused'),  # NL Gaussian, C=256: waste 128 <= 384
    ((1, 3400, 3400, 1024, 512), 'explicit'),  # NL Gaussian, C=1024: waste 512
    ((64, 256, 256, 256, 512), 'explicit'),  # ISA long-range groups, value_channels=C
    ((256, 64, 64, 256, 512), 'explicit'),  # ISA short-range groups
    ((64, 256, 256, 256, 256), 'fused'),  # ISA, equal widths
    ((256, 64, 64, 128, 256), 'fused'),  # waste 128: not more than 128
    ((1, 2304, 2304, 256, 512), 'explicit'),  # SA 48x48, waste 256 > 128
    ((1, 2304, 2304, 256, 128), 'fused'),  # NL Gaussian 48x48, waste 128
    ((1, 9409, 9409, 256, 512), 'fused'),  # SA 97x97, waste 256 <= 384
    ((1, 16384, 16384, 1024, 512), 'fused'),  # matrix of 2**28 elements: too big
]


@pytest.mark.parametrize('shape,expected', AUTO_CPU_FLOAT32)
def test_resolve_impl_follows_the_written_rule(shape, expected):
    assert resolve_impl('cpu', torch.float32, *shape) == expected
    assert resolve_impl('cpu', torch.float64, *shape) == expected
    for dtype in (torch.float16, torch.bfloat16):  # rule 2
        assert resolve_impl('cpu', dtype, *shape) == 'fused'
    # rule 4a: with a backward to come, unequal widths take the explicit path
    # while the matrices hold at most 2**26 elements
    groups, nq, nk, e, ev = shape
    small = groups * nq * nk <= 2**26
    assert resolve_impl('cpu', torch.float32, *shape, grad=True) == (
        'explicit' if e != ev and small else 'fused')


# (groups, Nq, Nk, E, Ev) -> the path rule 1 names on CUDA for float32 and
# half precision, inference and training (docs/benchmarks/attention_impls_cuda_*)
AUTO_CUDA = [
    # NL embedded Gaussian, C=256, 64x64: flash in half precision (1c)
    ((1, 4096, 4096, 128, 128), dict(fp32='explicit', half='fused', half_grad='fused')),
    # NL embedded Gaussian, C=1024, 50x68: width 512 > 256 (1d / 1e)
    ((1, 3400, 3400, 512, 512), dict(fp32='explicit', half='fused', half_grad='explicit')),
    ((1, 4096, 4096, 256, 128), dict(fp32='explicit', half='fused', half_grad='fused')),
    ((1, 3400, 3400, 1024, 512), dict(fp32='explicit', half='fused', half_grad='explicit')),
    # ISA's groups: at most 2500 keys (1b)
    ((64, 256, 256, 256, 512), dict(fp32='fused', half='fused', half_grad='fused')),
    ((256, 64, 64, 256, 512), dict(fp32='fused', half='fused', half_grad='fused')),
    ((1, 2500, 2500, 512, 512), dict(fp32='fused', half='fused', half_grad='fused')),
    ((1, 2501, 2501, 512, 512), dict(fp32='explicit', half='fused', half_grad='explicit')),
    # SA 97x97, value C / value C/2
    ((1, 9409, 9409, 256, 512), dict(fp32='explicit', half='fused', half_grad='explicit')),
    ((1, 9409, 9409, 256, 256), dict(fp32='explicit', half='fused', half_grad='fused')),
    # 128x128: 2**28 elements, the bound, still explicit; one more group is not (1a)
    ((1, 16384, 16384, 256, 512), dict(fp32='explicit', half='fused', half_grad='explicit')),
    ((2, 16384, 16384, 256, 512), dict(fp32='fused', half='fused', half_grad='fused')),
]


@pytest.mark.parametrize('shape,expected', AUTO_CUDA)
def test_resolve_impl_on_cuda_follows_rule_1(shape, expected):
    for device in ('cuda', 'cuda:1'):
        for grad in (False, True):
            assert resolve_impl(device, torch.float32, *shape, grad=grad) == expected['fp32']
        for dtype in (torch.float16, torch.bfloat16):
            assert resolve_impl(device, dtype, *shape) == expected['half']
            assert resolve_impl(device, dtype, *shape, grad=True) == expected['half_grad']


def test_check_impl_accepts_auto():
    assert check_impl('auto') == 'auto'


class _Paths(TorchDispatchMode):
    """Records whether SDPA or a plain matmul ran."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize('e,ev,groups,n,expected', [
    (48, 48, 2, 12, 'fused'), (300, 8, 2, 12, 'explicit'), (8, 300, 3, 10, 'explicit'),
    (200, 8, 1, 2600, 'fused'), (400, 8, 1, 2600, 'explicit')])
def test_auto_takes_the_resolved_path_and_equals_both(e, ev, groups, n, expected):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(groups, 1, n, e, generator=g, dtype=torch.float64) * e**-0.25
    k = torch.randn(groups, 1, n, e, generator=g, dtype=torch.float64) * e**-0.25
    v = torch.randn(groups, 1, n, ev, generator=g, dtype=torch.float64)
    assert resolve_impl('cpu', torch.float64, groups, n, n, e, ev) == expected
    with _Paths() as paths:
        auto = softmax_attention(q, k, v, 1.0, impl='auto')
    sdpa = any('scaled_dot_product' in op for op in paths.ops)
    assert sdpa == (expected == 'fused')
    for impl in ('fused', 'explicit'):
        torch.testing.assert_close(auto, softmax_attention(q, k, v, 1.0, impl=impl),
                                   rtol=1e-5, atol=1e-5)


def test_fused_pads_only_unequal_widths_and_never_forms_the_matrix():
    """Equal widths: no pad. Unequal widths: the narrow side is padded (one
    copy of q and k, or of v) and the CPU kernel still never holds an N x N
    float32 matrix (64 MiB at 4096 tokens)."""
    g = torch.Generator().manual_seed(0)
    n = 4096
    q, k = torch.randn(1, 1, n, 32, generator=g), torch.randn(1, 1, n, 32, generator=g)
    for ev in (32, 64, 16):
        v = torch.randn(1, 1, n, ev, generator=g)
        with _Paths() as paths:
            softmax_attention(q, k, v, 0.2, impl='fused')
        assert ('constant_pad_nd' in paths.ops) == (ev != 32), ev
        peak = peak_memory(lambda: softmax_attention(q, k, v, 0.2, impl='fused'))
        assert peak < n * n * 4 / 8, (ev, peak)


@pytest.mark.parametrize('device, dtype, widths, pads', [
    ('cpu', torch.float32, (288, 32), True),       # the CPU flash kernel: one width
    ('cpu', torch.bfloat16, (64, 128), True),
    ('cuda', torch.float32, (288, 32), False),     # memory-efficient kernel takes both
    ('cuda', torch.float32, (64, 128), False),
    ('cuda', torch.bfloat16, (288, 32), False),    # wider than the flash kernel's 256
    ('cuda', torch.float16, (64, 128), True),      # the flash kernel's case
    ('cuda', torch.bfloat16, (256, 32), True),
    ('cuda', torch.float32, (36, 32), True),       # off the 8-channel alignment
    ('cuda', torch.float32, (64, 20), True),
    ('mps', torch.float32, (64, 32), True),        # not measured: as before
])
def test_pads_to_one_width_follows_the_written_rule(device, dtype, widths, pads):
    assert pads_to_one_width(device, dtype, *widths) is pads


def test_unpadded_fused_path_equals_the_explicit_one(monkeypatch):
    """Where the rule says no padding (CUDA), q / k and v go to SDPA at their own
    widths; forced here on the CPU, the result (and gradients) equal explicit's."""
    g = torch.Generator().manual_seed(3)
    q, k = (torch.randn(2, 3, 10, 16, generator=g, requires_grad=True) for _ in range(2))
    v = torch.randn(2, 3, 10, 8, generator=g, requires_grad=True)
    bias = torch.randn(2, 3, 10, 10, generator=g)
    ref = softmax_attention(q, k, v, 0.3, bias, impl='explicit')
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    monkeypatch.setattr(attention_module, 'pads_to_one_width', lambda *args: False)
    widths, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def spy(q_, k_, v_, **kwargs):
        widths.append((q_.shape[-1], k_.shape[-1], v_.shape[-1]))
        return sdpa(q_, k_, v_, **kwargs)

    monkeypatch.setattr(torch.nn.functional, 'scaled_dot_product_attention', spy)
    with _Paths() as paths:
        out = softmax_attention(q, k, v, 0.3, bias, impl='fused')
    assert 'constant_pad_nd' not in paths.ops and widths == [(16, 16, 8)]
    assert out.shape == (2, 3, 10, 8)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(torch.autograd.grad(out.square().sum(), (q, k, v)), ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_auto_with_gradients_takes_the_explicit_path_for_unequal_widths():
    g = torch.Generator().manual_seed(2)
    q, k = (torch.randn(2, 1, 12, 16, generator=g, requires_grad=True) for _ in range(2))
    v = torch.randn(2, 1, 12, 8, generator=g, requires_grad=True)
    with _Paths() as paths:  # inference: waste 8 -> fused
        with torch.no_grad():
            softmax_attention(q, k, v, 0.25, impl='auto')
    assert any('scaled_dot_product' in op for op in paths.ops)
    with _Paths() as paths:  # a backward follows -> explicit
        out = softmax_attention(q, k, v, 0.25, impl='auto')
    assert not any('scaled_dot_product' in op for op in paths.ops)
    out.sum().backward()
    grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    softmax_attention(q, k, v, 0.25, impl='fused').sum().backward()
    for t, ref in zip((q, k, v), grads):
        torch.testing.assert_close(t.grad, ref, rtol=1e-5, atol=1e-6)
