"""Non-local blocks of Cao et al., "Global Context Networks" (GCNet) §3.1-§4.1.

* :class:`NonLocal2dBlock` -- the non-local (NL) block of Eq. 1,

      z_i = x_i + W_z sum_j f(x_i, x_j) / C(x) (W_v x_j),

  with the four pairwise functions of §3.1 (``mode``): Embedded Gaussian
  ``exp(theta_i^T phi_j)``, Gaussian ``exp(x_i^T x_j)`` (both normalised by
  a softmax), dot product ``theta_i^T phi_j / N`` and concatenation
  ``ReLU(w^T [theta_i, phi_j]) / N``.
* :class:`SimplifiedNonLocal2d` -- the simplified NL (SNL) block of Eq. 3,
  ``z_i = x_i + W_v sum_j softmax_j(W_k x_j) x_j`` (query independent).

Fast paths (``impl='fused'``; ``'explicit'`` forms the N x N_k matrix and is
the reference they are tested against). None forms an N x N_k tensor:

* Gaussian / Embedded Gaussian: ``scaled_dot_product_attention``;
* dot product: associativity, ``(theta phi^T / N_k) g = theta (phi^T g) / N_k``;
* concatenation: ``ReLU(a_i + b_j)`` with ``a_i = w_1^T theta_i``,
  ``b_j = w_2^T phi_j`` is ``a_i + b_j`` exactly on the keys with
  ``b_j > -a_i``, so with the keys sorted by b the sum over j is
  ``a_i S_g(t_i) + S_bg(t_i)``, S the suffix sums of g and b g and t_i found
  by binary search: O(N_k log N_k + (N + N_k) C) instead of O(N N_k C).

mmcv's ``NonLocal2d`` forms the matrix in every mode, hence our own block.

Scaling of the softmax logits (``use_scale``): GCNet §3.1 (after Wang et al.,
"Non-local Neural Networks") writes both softmax modes unscaled,
``exp(x_i^T x_j)`` and ``exp(theta_i^T phi_j)``. The released code the GCNet
tables were measured with (the GCNet authors' mmdetection plugin, which mmcv's
``NonLocal2d`` continues) divides the embedded-Gaussian logits by
``sqrt(C / reduction)`` (``use_scale=True`` there) and never scales the
Gaussian ones. ``use_scale=None`` (the default) follows that released code:
scaled embedded Gaussian, unscaled Gaussian; mmctx's configs (GCNet's and
OCNet's NL rows, all embedded Gaussian) use the default, so their blocks
compute what mmcv's ``NonLocal2d`` computes with the same weights.

Half precision: the dot-product and concatenation sums run in float32 for
float16 / bfloat16 inputs or under autocast (their N x N_k products overflow
float16 long before the output does); the softmax modes go through
:func:`~mmctx.models.layers.attention.softmax_attention`, which does the same
for its explicit path.

Export: every path traces with ``torch.jit.trace`` at one size and runs at
another; for ONNX (which has no ``searchsorted``) the concatenation block
switches to its explicit form while ``torch.onnx.is_in_onnx_export()``.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from .attention import (LOW_PRECISION, attention_matrix, check_impl,
                        compute_dtype, softmax_attention)
from .checks import check_channels, check_choice, check_norm_cfg, check_reduction
from .global_context import attention_pool, pooling_weights

__all__ = ['NonLocal2dBlock', 'SimplifiedNonLocal2d']

NL_MODES = ('embedded_gaussian', 'gaussian', 'dot_product', 'concatenation')
SOFTMAX_MODES = ('embedded_gaussian', 'gaussian')


@MODELS.register_module()
class NonLocal2dBlock(nn.Module):
    """Non-local block (GCNet Eq. 1, Fig. 3), residual and shape-preserving.

    Args:
        in_channels: C.
        reduction: theta / phi / g have ``C // reduction`` channels (2).
        mode: pairwise function, one of ``NL_MODES`` (§3.1).
        sub_sample: 2x2 max-pool keys and values (phi, g; Gaussian: x);
            skipped on maps smaller than 2x2 (e.g. 1x1).
        use_scale: divide the softmax logits by sqrt(d), d the width of the
            logits' vectors (C / reduction for the embedded Gaussian, C for
            the Gaussian). ``None``: the released code's choice (module
            docstring), True for the embedded Gaussian, False for the
            Gaussian. Not used by the dot-product / concatenation modes.
        norm_cfg: optional norm after W_z (e.g. ``dict(type='BN')``).
        zero_init: zero-init W_z (the norm's weight when there is one), so
            the block starts as the identity.
        impl: ``'fused'`` (the fast path of each mode, see the module
            docstring), ``'explicit'`` (formed matrix) or ``'auto'`` (the
            default: the softmax modes let :func:`.attention.resolve_impl`
            pick per call; the dot-product / concatenation modes take their
            fast path).
    """
    _abbr_ = 'nl'

    def __init__(self,
                 in_channels: int,
                 reduction: int = 2,
                 mode: str = 'embedded_gaussian',
                 sub_sample: bool = False,
                 use_scale: Optional[bool] = None,
                 norm_cfg: Optional[dict] = None,
                 zero_init: bool = True,
                 impl: str = 'auto'):
        super().__init__()
        check_channels('in_channels', in_channels)
        check_reduction(reduction, in_channels)
        check_choice('mode', mode, NL_MODES)
        check_choice('use_scale', use_scale, (None, True, False))
        check_norm_cfg(norm_cfg)
        self.in_channels = in_channels
        self.inter_channels = in_channels // reduction
        self.mode = mode
        self.sub_sample = sub_sample
        self.use_scale = (mode == 'embedded_gaussian' if use_scale is None
                          else bool(use_scale))
        self.impl = check_impl(impl)
        c, ci = in_channels, self.inter_channels
        self.g = nn.Conv2d(c, ci, 1)
        if mode != 'gaussian':
            self.theta = nn.Conv2d(c, ci, 1)
            self.phi = nn.Conv2d(c, ci, 1)
        if mode == 'concatenation':
            # w^T [theta_i, phi_j] followed by ReLU, split in its two halves
            self.concat_project = nn.Conv2d(2 * ci, 1, 1, bias=False)
        self.conv_out = ConvModule(
            ci, c, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.zero_init = zero_init
        self.init_weights()

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.conv_out.with_norm:
            nn.init.zeros_(self.conv_out.norm.bias)
        if self.zero_init:
            if self.conv_out.with_norm:
                nn.init.zeros_(self.conv_out.norm.weight)
            else:
                nn.init.zeros_(self.conv_out.conv.weight)

    @property
    def identity_start(self) -> bool:
        """``init_weights`` makes the block the identity (``zero_init``)."""
        return self.zero_init

    @property
    def attention_normalised(self) -> bool:
        """Rows of :meth:`get_attention` sum to 1: the softmax modes; the
        dot-product / concatenation modes divide by C(x) = N_k instead."""
        return self.mode in SOFTMAX_MODES

    def _pool(self, t: torch.Tensor) -> torch.Tensor:
        if self.sub_sample and min(t.shape[-2:]) >= 2:
            return F.max_pool2d(t, 2)
        return t

    @staticmethod
    def _tokens(t: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, HW, C)."""
        return t.flatten(2).transpose(1, 2).unsqueeze(1)

    def _qk(self, x: torch.Tensor):
        if self.mode == 'gaussian':
            return self._tokens(x), self._tokens(self._pool(x))
        return self._tokens(self.theta(x)), self._tokens(self._pool(
            self.phi(x)))

    def _scale(self, q: torch.Tensor) -> float:
        return q.shape[-1]**-0.5 if self.use_scale else 1.0

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, HW, HW_k): f(x_i, x_j) / C(x) of Eq. 1."""
        q, k = self._qk(x)
        if self.mode in SOFTMAX_MODES:
            return attention_matrix(q, k, self._scale(q))
        dtype = compute_dtype(k)
        if dtype in LOW_PRECISION:
            with torch.autocast(x.device.type, enabled=False):
                return self._pairwise(q.float(), k.float()).to(dtype)
        return self._pairwise(q, k)

    def _pairwise(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """f(x_i, x_j) / N_k of the dot-product / concatenation modes."""
        n = k.shape[-2]
        if self.mode == 'dot_product':
            return torch.matmul(q, k.transpose(-2, -1)) / n
        ci = self.inter_channels
        w = self.concat_project.weight.view(2 * ci)
        a = torch.matmul(q, w[:ci].to(q.dtype).unsqueeze(-1))  # (B,1,HW,1)
        b = torch.matmul(k, w[ci:].to(k.dtype).unsqueeze(-1))  # (B,1,HWk,1)
        return F.relu(a + b.transpose(-2, -1)) / n

    def _sum_over_keys(self, q: torch.Tensor, k: torch.Tensor,
                       v: torch.Tensor) -> torch.Tensor:
        """sum_j f(x_i, x_j) v_j / N_k, dot-product / concatenation modes."""
        if self.impl == 'explicit' or (self.mode == 'concatenation'
                                       and torch.onnx.is_in_onnx_export()):
            return torch.matmul(self._pairwise(q, k), v.to(q.dtype))
        if self.mode == 'dot_product':
            kv = torch.matmul(k.transpose(-2, -1), v.to(k.dtype))
            return torch.matmul(q, kv) / k.shape[-2]
        return self._concat_fused(q, k, v)

    def _concat_fused(self, q: torch.Tensor, k: torch.Tensor,
                      v: torch.Tensor) -> torch.Tensor:
        """sum_j ReLU(a_i + b_j) v_j / N_k by sorting the keys by b_j.

        q: (B, 1, N, Ci), k: (B, 1, N_k, Ci), v: (B, 1, N_k, Cv). Runs in
        float32 (suffix sums); gradients are those of the explicit form
        wherever no a_i + b_j is exactly 0 (where ReLU has no derivative).
        """
        ci = self.inter_channels
        wgt = self.concat_project.weight.view(2 * ci).float()
        a = torch.matmul(q[:, 0].float(), wgt[:ci])  # (B, N)
        bk = torch.matmul(k[:, 0].float(), wgt[ci:])  # (B, N_k)
        b_sorted, order = bk.sort(dim=-1)
        v_sorted = v[:, 0].float().gather(
            1, order[..., None].expand(-1, -1, v.shape[-1]))
        zeros = v_sorted.new_zeros(v_sorted.shape[0], 1, v_sorted.shape[-1])
        # suffix sums S[t] = sum_{s >= t}, with S[N_k] = 0
        s_v = torch.cat([v_sorted, zeros], 1).flip(1).cumsum(1).flip(1)
        s_bv = torch.cat([b_sorted[..., None] * v_sorted, zeros],
                         1).flip(1).cumsum(1).flip(1)
        # first sorted key with b_j > -a_i
        t = torch.searchsorted(b_sorted.detach().contiguous(),
                               (-a).detach().contiguous(), right=True)
        idx = t[..., None].expand(-1, -1, v.shape[-1])
        y = a[..., None] * s_v.gather(1, idx) + s_bv.gather(1, idx)
        return (y / k.shape[-2]).to(v.dtype)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        v = self._tokens(self._pool(self.g(x)))
        q, k = self._qk(x)
        if self.mode in SOFTMAX_MODES:
            y = softmax_attention(q, k, v, self._scale(q), impl=self.impl)
        else:
            dtype = compute_dtype(v)
            if dtype in LOW_PRECISION:
                with torch.autocast(x.device.type, enabled=False):
                    y = self._sum_over_keys(q.float(), k.float(), v.float())
                y = y.to(dtype)
            else:
                y = self._sum_over_keys(q, k, v)
        # explicit channel count: a batch of 0 has no -1 to infer
        y = y.squeeze(1).transpose(1, 2).reshape(b, self.inter_channels, h, w)
        return x + self.conv_out(y)


@MODELS.register_module()
class SimplifiedNonLocal2d(nn.Module):
    """Simplified non-local block, GCNet Eq. 3 / Fig. 4(b).

    ``z_i = x_i + W_v sum_j softmax_j(W_k x_j) x_j``: one query-independent
    attention map (W_k: C -> 1) pools the features, one 1x1 conv W_v (C x C)
    transforms the pooled context, which is broadcast-added to every position.

    Args:
        in_channels: C.
        zero_init: zero-init W_v so the block starts as the identity.
    """
    _abbr_ = 'snl'

    def __init__(self, in_channels: int, zero_init: bool = True):
        super().__init__()
        check_channels('in_channels', in_channels)
        self.in_channels = in_channels
        # W_k; no bias: a constant logit cancels in the softmax
        self.conv_mask = nn.Conv2d(in_channels, 1, 1, bias=False)
        self.conv_value = nn.Conv2d(in_channels, in_channels, 1)  # W_v
        self.zero_init = zero_init
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.kaiming_normal_(self.conv_mask.weight, mode='fan_in')
        nn.init.normal_(self.conv_value.weight, std=0.01)
        nn.init.zeros_(self.conv_value.bias)
        if self.zero_init:
            nn.init.zeros_(self.conv_value.weight)

    @property
    def identity_start(self) -> bool:
        """``init_weights`` makes the block the identity (``zero_init``)."""
        return self.zero_init

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, HW): softmax_j(W_k x_j), shared by all queries."""
        return pooling_weights(x, self.conv_mask)[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = attention_pool(x, pooling_weights(x, self.conv_mask))  # (B, C, 1, 1)
        return x + self.conv_value(ctx)
