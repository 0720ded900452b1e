"""mmctx.models.layers.attention (softmax attention, fused and explicit) and
mmctx.models.layers.checks (the blocks' shared argument checks)."""
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmctx.models.layers.attention import (attention_matrix, check_divisible,
                                           check_impl, softmax_attention)
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
