"""Shared pieces of the attention blocks: token reshapes and softmax attention.

Every dense attention in mmctx goes through :func:`softmax_attention`, which
has two implementations of the same formula ``softmax(s * Q K^T + B) V``:

* ``impl='fused'``: :func:`torch.nn.functional.scaled_dot_product_attention`,
  so CUDA can pick its flash / memory-efficient kernels and no (N x N)
  matrix is kept for backward;
* ``impl='explicit'``: the matrix is formed, the reference the fused path is
  tested against (and the path that can return the matrix for analysis);
* ``impl='auto'``: whichever of the two :func:`resolve_impl` says measured
  faster for the device, dtype and shapes of the call.

Widths: the fused CPU kernel of torch 2.13 (and the CUDA flash kernel) needs
one width for q, k and v. Given q / k of width E and v of width Ev != E, SDPA
on the CPU silently falls back to its math path, which forms the N x N
matrix (float32, float64, bfloat16 and float16 alike: a 4096-token call
with E = 64, Ev = 128 peaks at 145 MiB against 1.6 MiB at E = Ev, measured
with :func:`mmctx.analysis.memory.peak_memory`). The fused path therefore
zero-pads the narrower side to the wider one, and only then: zero channels
change neither q k^T nor (keeping the first Ev outputs) attn v, but the
padded product costs 2 max(E, Ev) instead of E + Ev multiply-adds per
logit, which is why 'auto' takes the explicit path where that waste
outweighs the N x N matrix.

The rule of :func:`resolve_impl` (rules 2-4: the CPU, one thread, measured
with ``python tools/analysis_tools/benchmark_modules.py --kind attention``
and, for backward, the per-thread CPU time of both paths; rule 1: CUDA):

1. CUDA (measured on an NVIDIA H200, torch 2.11, with ``--kind attention
   --device cuda --dtypes float32 float16 bfloat16``:
   ``docs/benchmarks/attention_impls_cuda_nvidia-h200.csv``); unequal widths
   are padded only where :func:`pads_to_one_width` says:

   a. the matrices (groups x Nq x Nk) hold more than 2**28 elements (one
      128 x 128 map's, 1 GiB in float32) -> 'fused': the memory bound;
   b. at most 2500 keys per group (ISA's 64- and 256-token groups) ->
      'fused' (0.31-1.00x the explicit path's time, float32 too; once
      1.05x: the 256-token groups at 128 x 128 in float32 inference);
   c. float16 / bfloat16 with both widths <= 256 (the flash kernel) ->
      'fused' (0.14-0.60x the explicit time: NL at 64 x 64, SA at 97 x 97
      with value C/2);
   d. float16 / bfloat16 inference with a wider side -> 'fused' (SDPA's
      memory-efficient kernel, 0.53-0.66x: NL at C = 1024, SA value C);
   e. otherwise -> 'explicit': float32 (the memory-efficient kernel took
      1.05-1.45x the explicit path's time in inference and 1.66-2.79x with
      the backward: NL at 64 x 64 and 50 x 68, SA at 97 x 97) and
      half-precision training with a width > 256 (3.0-3.2x: 5.04 against
      1.66 ms for NL at C = 1024 in float16). The explicit path's memory is
      then the peers' (mmcv's, mmseg's, timm's form the matrix too);
      ``impl='fused'`` keeps 0.05-0.55x of it at 1.1-2.4x the time
      (``docs/benchmarks/peers_cuda_nvidia-h200.md``);
2. float16 / bfloat16 -> 'fused' (the explicit path computes its logits in
   float32 and was 11-22x slower on the CPU at the blocks' sizes);
3. E == Ev -> 'fused' (no padding; 1.05-2.5x faster than explicit at the
   blocks' sizes, forward and backward, and no N x N matrix);
4. E != Ev, and the matrices (groups x Nq x Nk) hold at most 2**26
   elements -> 'explicit' when the padding wastes more than the matrix
   costs, else 'fused':
   a. with gradients (training): always (the padded fused backward took
      1.0-2.1x the explicit one: 0.41 against 0.30 s at 2304 tokens,
      E = 256, Ev = 128);
   b. inference: |E - Ev| > 128 for up to 2500 keys (ISA's 64- and
      256-token groups: 0.46x; 48 x 48 maps with Ev = 2E: 0.88x), > 384
      beyond (NL Gaussian at C = 1024, 50 x 68: E = 1024, Ev = 512, 0.78x;
      at 64 x 64 with E = 256, Ev = 128 and at 97 x 97 with E = 256, Ev = 512
      the fused kernel stays ahead, 1.2x).
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .checks import check_choice, check_divisible

__all__ = [
    'ATTENTION_IMPLS', 'check_impl', 'resolve_impl', 'pads_to_one_width', 'check_divisible',
    'to_heads', 'from_heads', 'compute_dtype', 'attention_matrix', 'softmax_attention'
]

ATTENTION_IMPLS = ('fused', 'explicit', 'auto')
LOW_PRECISION = (torch.float16, torch.bfloat16)

# resolve_impl's thresholds (module docstring, rules 1 and 4)
CUDA_EXPLICIT_MAX_ELEMENTS = 2**28
FLASH_MAX_WIDTH = 256
SMALL_GROUP_KEYS = 2500
PAD_WASTE_SMALL_GROUPS = 128
PAD_WASTE_LARGE = 384
EXPLICIT_MAX_ELEMENTS = 2**26


def check_impl(impl: str) -> str:
    """Return ``impl`` if it names an attention implementation, else raise."""
    return check_choice('impl', impl, ATTENTION_IMPLS)


def resolve_impl(device: str, dtype: torch.dtype, groups: int, num_queries: int,
                 num_keys: int, qk_width: int, v_width: int, grad: bool = False) -> str:
    """The path ``impl='auto'`` takes: ``'fused'`` or ``'explicit'``.

    The rule is the module docstring's (rules 1-4), a pure function of the
    call's device type (``'cpu'``, ``'cuda'``, ...), the dtype the products
    run in, the number of independent attentions (batch x heads x groups),
    the query and key counts, the widths of q / k and of v, and whether a
    backward pass will follow (``grad``).
    """
    device_type = torch.device(device).type
    if device_type == 'cuda':
        return _resolve_cuda(dtype, groups * num_queries * num_keys, num_keys,
                             max(qk_width, v_width), grad)
    if device_type != 'cpu' or dtype in LOW_PRECISION:
        return 'fused'
    waste = abs(qk_width - v_width)
    if waste == 0 or groups * num_queries * num_keys > EXPLICIT_MAX_ELEMENTS:
        return 'fused'
    if grad:
        return 'explicit'
    limit = PAD_WASTE_SMALL_GROUPS if num_keys <= SMALL_GROUP_KEYS else PAD_WASTE_LARGE
    return 'explicit' if waste > limit else 'fused'


def _resolve_cuda(dtype: torch.dtype, elements: int, num_keys: int, width: int,
                  grad: bool) -> str:
    """Rule 1 of the module docstring: CUDA."""
    if elements > CUDA_EXPLICIT_MAX_ELEMENTS or num_keys <= SMALL_GROUP_KEYS:
        return 'fused'
    if dtype in LOW_PRECISION and (width <= FLASH_MAX_WIDTH or not grad):
        return 'fused'
    return 'explicit'


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


def pads_to_one_width(device: str, dtype: torch.dtype, width_qk: int, width_v: int) -> bool:
    """Whether the fused path zero-pads q / k and v of unequal widths to one.

    The CPU's flash kernel needs one width (module docstring), and so does
    CUDA's flash kernel, which takes float16 / bfloat16 up to 256 channels.
    Elsewhere on CUDA (float32, or wider) SDPA runs its memory-efficient
    kernel, which takes unequal widths, and padding only adds work. Measured
    on an NVIDIA H200 (torch 2.11, docs/benchmarks/cuda_nvidia-h200_unpadded_rule.json),
    unpadded against padded: the GCNL block (q / k carry W^ + H^ one-hot
    channels more than v: d = 32 -> 288 at 1 x 512 x 128 x 128) 1.87x faster
    in fp32 and 1.65x in bf16 inference, and its head trained 1.35x faster in
    fp32 at 2 x 512 x 64 x 128 with 0.61x the memory; plain attention with
    E / Ev = 64 / 128, 1024 / 512 and 256 / 128 1.24-1.46x faster in fp32
    (0.24-0.33x the memory), 1024 / 512 in bf16 1.45x. Kept padded: the
    flash kernel's case (half precision, both widths <= 256; not measured
    against the unpadded kernel except once: the GCNL head in bf16, 224 / 32,
    ran 1.18x faster unpadded, docs/benchmarks/cuda_nvidia-h200_gcnl_variants.json),
    and widths off the kernels' 8-channel alignment (unaligned, SDPA would
    form the matrix).
    """
    if torch.device(device).type != 'cuda':
        return True
    if width_qk % 8 or width_v % 8:
        return True
    return dtype in LOW_PRECISION and max(width_qk, width_v) <= FLASH_MAX_WIDTH


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
        impl: ``'fused'``, ``'explicit'`` or ``'auto'`` (see the module
            docstring and :func:`resolve_impl`).
    """
    check_impl(impl)
    if impl == 'auto':
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
        impl = resolve_impl(q.device.type, compute_dtype(q), q.shape[:-2].numel(),
                            q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1], grad)
    if impl == 'fused':
        if bias is not None:
            bias = bias.to(q.dtype)
        # The flash kernels (CPU and CUDA) need unit stride on the channel
        # axis and, where pads_to_one_width says so, one width for q, k and
        # v; otherwise SDPA silently falls back to forming the (Nq x Nk)
        # matrix. Token views such as to_heads' are strided there, so copy
        # them, unless they are padded anyway (F.pad writes a new, contiguous
        # tensor): zero channels change neither q k^T nor (keeping the first
        # dv outputs) attn v.
        dq, dv = q.shape[-1], v.shape[-1]
        pad = dq != dv and pads_to_one_width(q.device.type, compute_dtype(q), dq, dv)
        if pad and dq > dv:
            q, k = _unit_last_stride(q), _unit_last_stride(k)
            v = F.pad(v, (0, dq - dv))
        elif pad:
            q, k = F.pad(q, (0, dv - dq)), F.pad(k, (0, dv - dq))
            v = _unit_last_stride(v)
        else:
            q, k, v = (_unit_last_stride(t) for t in (q, k, v))
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=dropout_p, scale=scale)
        return out[..., :dv] if pad and dq > dv else out
    attn = attention_matrix(q, k, scale, bias)
    if dropout_p > 0:
        attn = F.dropout(attn, dropout_p, training=True)
    return torch.matmul(attn, v)
