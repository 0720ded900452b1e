"""Shared pieces of the attention blocks: token reshapes and softmax attention.

Every dense attention in mmctx goes through :func:`softmax_attention`, which
has two implementations of the same formula ``softmax(s * Q K^T + B) V``:

* ``impl='fused'``: :func:`torch.nn.functional.scaled_dot_product_attention`,
  so CUDA can pick its flash / memory-efficient kernels and no (N x N)
  matrix is kept for backward;
* ``impl='explicit'``: the matrix is formed, the reference the fused path is
  tested against (and the path that can return the matrix for analysis).

Half precision: the explicit logits ``s * Q K^T + B`` and their softmax are
computed in float32 whenever the inputs are float16 / bfloat16 or autocast is
on (autocast would otherwise run the product in half precision, where logits
beyond 65504 overflow to inf and the softmax to NaN); the attention matrix is
cast back to the half type. SDPA does the same internally, so both paths stay
finite on the same inputs.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .checks import check_choice, check_divisible

__all__ = [
    'ATTENTION_IMPLS', 'check_impl', 'check_divisible', 'to_heads',
    'from_heads', 'compute_dtype', 'attention_matrix', 'softmax_attention'
]

ATTENTION_IMPLS = ('fused', 'explicit')
LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_impl(impl: str) -> str:
    """Return ``impl`` if it names an attention implementation, else raise."""
    return check_choice('impl', impl, ATTENTION_IMPLS)


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype a matmul on ``t`` runs in: autocast's if it is on, else
    ``t.dtype``."""
    device = t.device.type
    if t.is_floating_point() and torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return t.dtype


def to_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, heads, H*W, C/heads): one token per position."""
    b, c, h, w = x.shape
    return x.reshape(b, num_heads, c // num_heads, h * w).transpose(-2, -1)


def from_heads(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, heads, H*W, d) -> (B, heads*d, H, W): inverse of :func:`to_heads`."""
    b, n, hw, d = x.shape
    return x.transpose(-2, -1).reshape(b, n * d, h, w)


def _logits_softmax(q: torch.Tensor, k: torch.Tensor, scale: float,
                    bias: Optional[torch.Tensor]) -> torch.Tensor:
    # scale the (N, d) queries, not the (N, N_k) product, and add the bias
    # in place: one N x N_k tensor besides the softmax output (matmul's
    # backward needs q and k, not its output, so the in-place add is safe)
    if scale != 1.0:
        q = q * scale
    logits = torch.matmul(q, k.transpose(-2, -1))
    if bias is not None:
        if torch.broadcast_shapes(logits.shape, bias.shape) == logits.shape:
            logits.add_(bias.to(logits.dtype))
        else:
            logits = logits + bias.to(logits.dtype)
    return logits.softmax(dim=-1)


def attention_matrix(q: torch.Tensor,
                     k: torch.Tensor,
                     scale: float,
                     bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """softmax(scale * q k^T + bias) over the last axis, formed explicitly.

    Half-precision inputs (or autocast) are computed in float32 and the
    matrix is returned in the half type (module docstring).
    """
    dtype = compute_dtype(q)
    if dtype in LOW_PRECISION or k.dtype in LOW_PRECISION:
        with torch.autocast(q.device.type, enabled=False):
            attn = _logits_softmax(q.float(), k.float(), scale,
                                   None if bias is None else bias.float())
        return attn.to(dtype if dtype in LOW_PRECISION else k.dtype)
    return _logits_softmax(q, k, scale, bias)


def _unit_last_stride(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself if its last axis has unit stride, else a contiguous copy."""
    return t if t.stride(-1) == 1 else t.contiguous()


def softmax_attention(q: torch.Tensor,
                      k: torch.Tensor,
                      v: torch.Tensor,
                      scale: float,
                      bias: Optional[torch.Tensor] = None,
                      dropout_p: float = 0.0,
                      impl: str = 'fused') -> torch.Tensor:
    """``softmax(scale * q k^T + bias) v`` with dropout on the attention.

    Args:
        q: (..., Nq, d); k: (..., Nk, d); v: (..., Nk, dv).
        scale: the factor on the logits (e.g. ``d ** -0.5``).
        bias: optional additive logits, broadcastable to (..., Nq, Nk).
        dropout_p: dropout on the attention matrix; the caller passes 0
            outside training.
        impl: ``'fused'`` or ``'explicit'`` (see the module docstring).
    """
    check_impl(impl)
    if impl == 'fused':
        if bias is not None:
            bias = bias.to(q.dtype)
        # The flash kernels (CPU and CUDA) need unit stride on the channel
        # axis and one width for q, k and v; otherwise SDPA silently falls
        # back to forming the (Nq x Nk) matrix. Token views such as
        # to_heads' are strided there, so copy them; zero channels change
        # neither q k^T nor (keeping the first dv outputs) attn v.
        q, k, v = (_unit_last_stride(t) for t in (q, k, v))
        dq, dv = q.shape[-1], v.shape[-1]
        if dq > dv:
            v = F.pad(v, (0, dq - dv))
        elif dv > dq:
            q, k = F.pad(q, (0, dv - dq)), F.pad(k, (0, dv - dq))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
        return out[..., :dv] if dq > dv else out
    attn = attention_matrix(q, k, scale, bias)
    if dropout_p > 0:
        attn = F.dropout(attn, dropout_p, training=True)
    return torch.matmul(attn, v)
