"""Efficient non-local (ENL) block and the explicit non-local of the same family.

Paper: Levi & Ullman, "Efficient Coarse-to-Fine Non-Local Module for the
Detection of Small Objects" (BMVC 2019, arXiv:1811.12152). Equation numbers
below are the paper's.

With the dot-product similarity of Eq. 4, F = θ^T φ (an HW x HW matrix) is
immediately multiplied by g, so the associative law gives Eq. 5,

    y = θ^T [φ g],

whose inner product φ g is only C x C_g: memory and operations O(HW)
(Table 1). The normalisation Z(x) of Eq. 1 cannot be taken over the formed
F any more; Table 5 normalises φ and θ instead (``phi_norm``,
``theta_norm``). Relative position (§3.3) enters as an additive low-rank
filter, Eqs. 7-9,

    F g = θ^T [φ g] + Ê [Ê^T g],

where the columns of Ê are the lowest 9x9 frequencies of the orthonormal
2D DCT (Ê Ê^T is a sinc-like low-pass filter, Fig. 4). Ê is separable,
Ê = E_h ⊗ E_w, so Ê [Ê^T g] is computed as two small per-axis products and
nothing of size (HW)^2 is formed.

``mode='explicit'`` is the same family with F formed (the reference, and
the original NL the paper compares with): ``similarity='dot'`` (Eq. 4, same
φ / θ normalisation: equal to the efficient mode) or ``similarity='exp'``
(Eq. 2, the embedded Gaussian normalised by Z = Σ_j F, Eq. 10 - Table 5's
"NL softmax" and Table 3's baseline). The block returns ``x + o(y)``
(Eq. 3); weights are initialised N(0, 0.01) and no normalisation layer is
used inside (§4).

Where the position term L meets the normaliser Z. §3.3 gives each of its
two encodings its own equation, and we follow each one:

* ``pos_enc='l1'``, L(i, j) = exp(-l1(i, j) / 50), is "the first [version],
  ... applicable only for the case where we use a full version of F as an
  inner variable. In this case: F(x_i, x_j) = F̃(x_i, x_j) ⊙ L(i, j)"
  (Eq. 6). L is fused with the similarity F̃ of Eq. 2 / Eq. 4 itself, and
  for ``'exp'`` the fused F is normalised by Z = Σ_j F (Eqs. 1, 10): with
  ``'mul'`` F / Z = softmax_j(s_ij - l1(i, j) / 50); with ``'add'``
  F / Z = softmax_j(log(e^{s_ij} + L_ij)). L is in (0, 1], on the scale of
  F̃ = e^s, so neither swamps the other and Z, a sum of positive terms, is
  never <= 0.
* ``pos_enc='dct'``, L = Ê Ê^T (Eq. 8), is "the second version ...
  applicable also to the efficient implementation. In this case, the
  formulation is given by: F g = [θ^T φ + L] g" (Eq. 7): L joins the
  *normalised* similarity A (θ_n^T φ_n of the ENL, whose normalisation is
  that of φ / θ; F̃ / Z = softmax_j(s_ij) of the NL), never Z:
  ``'add'`` gives y = A g + Ê [Ê^T g] in the explicit NL exactly as in the
  ENL - the two forms share the same position term, as the paper's
  "Conveniently, this is also the spatial filter that can be integrated
  into the more compact implementation of the ENL module" (§5.2) says they
  do -, and ``'mul'`` (Table 3 "cos mul", explicit only) gives
  y = (A ⊙ L) g. L's rows sum to 1 (a constant map passes the low-pass
  unchanged), the scale of A's rows, so it is visible beside the similarity
  ("the local response of the low pass filter", §5.1, Fig. 7). Put inside
  Z instead, L would be swamped by Σ_j e^s ≈ HW ('add'), and its negative
  lobes make Σ_j e^s L <= 0 for a fifth of the rows at logit std 3
  ('mul'); outside, Z = Σ_j e^s.

In both cases the normaliser is computed with the row maximum factored out,
Z' = Σ_j exp(a_ij - max_j a_ij) in [1, HW] (:meth:`_normalised_similarity`).

Where the explicit F / Z is a plain softmax of (biased) logits (``'exp'``
without position, with the l1 term multiplied - a logit bias -l1/50 -, or
with the DCT term added after the softmax) it runs through
``F.scaled_dot_product_attention`` (``impl='fused'``), the formed matrix
staying as the ``impl='explicit'`` reference.

Shapes: any batch (0 included) and any map from 1x1. The DCT basis is built
from the map with tensor operations only, so a traced or ONNX-exported block
runs at any size.
"""
import math
import numbers
from typing import Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .attention import check_impl, softmax_attention
from .checks import check_channels, check_choice, check_int, check_reduction

__all__ = [
    'dct_basis', 'dct_lowpass', 'dct_position_matrix', 'l1_distance_matrix',
    'l1_position_matrix',
    'EfficientNonLocal2d'
]


def _dct_columns(positions: torch.Tensor, k: int) -> torch.Tensor:
    """(n, k): orthonormal DCT-II columns u = 0..k-1 at ``positions`` 0..n-1.

    Column u is ``c_u cos(pi (2y + 1) u / (2n))`` with c_0 = sqrt(1/n),
    c_u = sqrt(2/n). Columns u >= n do not exist for a length-n signal and
    are zero. n is taken from ``positions`` with tensor operations only, so
    a traced graph keeps it a function of the input size.
    """
    n = torch.ones_like(positions).sum()
    u = torch.arange(k, dtype=positions.dtype, device=positions.device)
    angle = (math.pi / 2) * (2 * positions[:, None] + 1) * u[None, :] / n
    scale = torch.where(u == 0, torch.rsqrt(n), torch.sqrt(2 / n))
    scale = scale * (u < n).to(positions.dtype)
    return torch.cos(angle) * scale


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _axis_basis(n, k: int, device, dtype) -> torch.Tensor:
    """(n, k) DCT columns for an axis of length n (an int or a traced size)."""
    positions = torch.arange(n, device=device, dtype=_compute_dtype(dtype))
    return _dct_columns(positions, k).to(dtype)


def dct_basis(n: int, k: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n, min(k, n)): the first k columns of the orthonormal 1D DCT-II matrix.

    Column u is the frequency-u basis vector evaluated at positions 0..n-1,
    ``c_u cos(pi (2y + 1) u / (2n))`` with c_0 = sqrt(1/n), c_u = sqrt(2/n),
    so row y holds the DCT coefficients of a one-hot signal at y (the e(i)
    of Levi & Ullman §3.3, in 1D).
    """
    return _axis_basis(n, k, device, dtype)[:, :min(k, n)]


def dct_lowpass(g: torch.Tensor, size: int = 9) -> torch.Tensor:
    """Ê [Ê^T g] of Levi & Ullman Eq. 9 for maps g of shape (B, C, H, W).

    Ê (HW x k_h k_w) keeps the 2D DCT frequencies (u, v) with u < k_h =
    min(size, H), v < k_w = min(size, W). Since Ê = E_h ⊗ E_w, Ê^T g is
    E_h^T G E_w per channel and Ê [.] is E_h [.] E_w^T: O(HW k) memory.
    The per-axis bases always have ``size`` columns, those beyond the axis
    length being zero, so the clipping is a tensor operation on H and W.
    """
    h, w = g.shape[-2:]
    dtype = g.dtype if g.dtype.is_floating_point else torch.float32
    eh = _axis_basis(h, size, g.device, dtype)
    ew = _axis_basis(w, size, g.device, dtype)
    coef = torch.matmul(torch.matmul(eh.t(), g), ew)  # (B, C, size, size)
    return torch.matmul(torch.matmul(eh, coef), ew.t())


def dct_position_matrix(h: int, w: int, size: int = 9, device=None,
                        dtype=torch.float32) -> torch.Tensor:
    """(HW, HW) low-pass filter L = Ê Ê^T of Levi & Ullman Eq. 8, formed.

    For the explicit mode and for analysis only. L((y, x), (y', x')) =
    Lh(y, y') Lw(x, x') with Lh = E_h E_h^T (Ê = E_h ⊗ E_w).
    """
    eh = _axis_basis(h, size, device, dtype)
    ew = _axis_basis(w, size, device, dtype)
    lh, lw = eh @ eh.t(), ew @ ew.t()
    return (lh[:, None, :, None] * lw[None, :, None, :]).reshape(h * w, h * w)


def l1_distance_matrix(h: int, w: int, device=None,
                       dtype=torch.float32) -> torch.Tensor:
    """(HW, HW) l1 distance |y_i - y_j| + |x_i - x_j| between grid positions."""
    ys = torch.arange(h, device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    dy = (ys[:, None] - ys[None, :]).abs()  # (H, H)
    dx = (xs[:, None] - xs[None, :]).abs()  # (W, W)
    return (dy[:, None, :, None] + dx[None, :, None, :]).reshape(h * w, h * w)


def l1_position_matrix(h: int, w: int, scale: float = 50.0, device=None,
                       dtype=torch.float32) -> torch.Tensor:
    """(HW, HW) L(i, j) = exp(-l1(i, j) / scale), Levi & Ullman §3.3 (50)."""
    return torch.exp(-l1_distance_matrix(h, w, device, dtype) / scale)


def _check_positive(name: str, value, allow_zero: bool = False) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(value) and (value >= 0 if allow_zero else value > 0))
    if not ok:
        bound = '>= 0' if allow_zero else '> 0'
        raise ValueError(f'{name} must be a finite number {bound}, got '
                         f'{value!r}')
    return float(value)


@MODELS.register_module()
class EfficientNonLocal2d(nn.Module):
    """ENL block (Levi & Ullman §3.2-3.3) and the explicit NL of its family.

    Args:
        in_channels: C of the input (B, C, H, W).
        reduction: θ, φ, g have ``C // reduction`` channels (must divide C).
        mode: ``'efficient'`` (Eq. 5 / Eq. 9: θ^T [φ g], O(HW) memory) or
            ``'explicit'`` (F formed, O((HW)^2)).
        similarity: ``'dot'`` (Eq. 4, F = θ_n^T φ_n) or, explicit mode only,
            ``'exp'`` (Eq. 2, F = exp(θ^T φ) normalised by Z = Σ_j F).
        phi_norm: normalisation of φ for ``'dot'`` (Table 5):
            ``'softmax'`` over the HW positions of each channel (the default
            and best), ``'1/N'`` (divide by N = HW) or ``'none'``. Must be
            ``'none'`` for ``'exp'``; ``None`` picks the default of the
            similarity.
        theta_norm: ``'none'`` or ``'tanh'`` (element-wise on θ, Table 5).
        pos_enc: ``'none'``, ``'dct'`` (L = Ê Ê^T, Eqs. 7-9) or, explicit
            mode only, ``'l1'`` (L = exp(-l1 / l1_scale), Eq. 6).
        pos_fusion: ``'add'`` or, explicit mode only, ``'mul'`` (Eq. 6's
            ⊙, Table 3). With ``'exp'``, the l1 term is fused with exp(θ^T φ)
            inside Z (Eq. 6) and the DCT term with the normalised softmax,
            outside Z (Eq. 7); see the module docstring.
        dct_size: lowest frequencies kept per axis (9 -> 9x9 columns of Ê).
        l1_scale: the 50 of exp(-l1 / 50).
        init_std: std of the N(0, std) init of every conv (biases 0), §4.
        impl: for ``similarity='exp'`` where F / Z is a softmax of biased
            logits (no position, ``pos_enc='l1', pos_fusion='mul'``, or the
            DCT term added after the softmax), ``'fused'`` runs
            ``F.scaled_dot_product_attention`` (plus Ê [Ê^T g] for the DCT
            term); ``'explicit'`` forms F; ``'auto'`` lets
            :func:`~mmctx.models.layers.attention.resolve_impl` pick one of
            the two per call. The other configurations have no softmax to
            fuse (``'dot'``: use ``mode='efficient'``, the fast path) and
            always form F.
    """
    _abbr_ = 'enl'
    identity_start = False  # every conv N(0, init_std), W_o included (§4)

    def __init__(self,
                 in_channels: int,
                 reduction: int = 2,
                 mode: str = 'efficient',
                 similarity: str = 'dot',
                 phi_norm: Optional[str] = None,
                 theta_norm: str = 'none',
                 pos_enc: str = 'none',
                 pos_fusion: str = 'add',
                 dct_size: int = 9,
                 l1_scale: float = 50.0,
                 init_std: float = 0.01,
                 impl: str = 'fused'):
        super().__init__()
        check_impl(impl)
        check_channels('in_channels', in_channels)
        check_reduction(reduction, in_channels, exact=True)
        check_choice('mode', mode, ('efficient', 'explicit'))
        check_choice('similarity', similarity, ('dot', 'exp'))
        if phi_norm is None:
            phi_norm = 'softmax' if similarity == 'dot' else 'none'
        check_choice('phi_norm', phi_norm, ('softmax', '1/N', 'none'))
        check_choice('theta_norm', theta_norm, ('none', 'tanh'))
        check_choice('pos_enc', pos_enc, ('none', 'dct', 'l1'))
        check_choice('pos_fusion', pos_fusion, ('add', 'mul'))
        if mode == 'efficient':
            if similarity != 'dot':
                raise ValueError("similarity='exp' needs the formed matrix: "
                                 "use mode='explicit'")
            if pos_enc == 'l1':
                raise ValueError("pos_enc='l1' is not low-rank (Levi & Ullman "
                                 "§3.3): use mode='explicit' or pos_enc='dct'")
            if pos_enc != 'none' and pos_fusion != 'add':
                raise ValueError("pos_fusion='mul' breaks the low-rank product "
                                 "of Eq. 9: use pos_fusion='add' or "
                                 "mode='explicit'")
        if similarity == 'exp' and (phi_norm != 'none' or theta_norm != 'none'):
            raise ValueError("similarity='exp' normalises by Z = sum_j F "
                             "(Eq. 10): phi_norm and theta_norm must be 'none'")
        check_int('dct_size', dct_size)
        l1_scale = _check_positive('l1_scale', l1_scale)
        init_std = _check_positive('init_std', init_std, allow_zero=True)
        self.in_channels = in_channels
        self.inter_channels = in_channels // reduction
        self.mode = mode
        self.similarity = similarity
        self.phi_norm = phi_norm
        self.theta_norm = theta_norm
        self.pos_enc = pos_enc
        self.pos_fusion = pos_fusion
        self.dct_size = dct_size
        self.l1_scale = l1_scale
        self.init_std = init_std
        self.impl = impl
        self.theta = nn.Conv2d(in_channels, self.inter_channels, 1)
        self.phi = nn.Conv2d(in_channels, self.inter_channels, 1)
        self.g = nn.Conv2d(in_channels, self.inter_channels, 1)
        self.conv_out = nn.Conv2d(self.inter_channels, in_channels, 1)
        self.init_weights()

    def init_weights(self) -> None:
        for m in (self.theta, self.phi, self.g, self.conv_out):
            nn.init.normal_(m.weight, std=self.init_std)
            nn.init.zeros_(m.bias)

    @property
    def attention_normalised(self) -> bool:
        """Rows of :meth:`get_attention` sum to 1: only F / Z of ``'exp'``
        without the DCT term (added outside Z); ``'dot'`` is not normalised."""
        return self.similarity == 'exp' and self.pos_enc != 'dct'

    # --- pieces -----------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if torch.jit.is_tracing():  # shapes are symbolic: checked when eager
            return
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects a (B, '
                             f'{self.in_channels}, H, W) input, got '
                             f'{tuple(x.shape)}')
        if x.shape[2] < 1 or x.shape[3] < 1:
            raise ValueError(f'{type(self).__name__} needs H, W >= 1, got a '
                             f'{x.shape[2]}x{x.shape[3]} map')

    def _embed(self, x: torch.Tensor):
        """θ_n, φ_n (B, C', N) after the Table 5 normalisations; g (B, C', H, W)."""
        theta = self.theta(x).flatten(2)
        phi = self.phi(x).flatten(2)
        if self.theta_norm == 'tanh':
            theta = torch.tanh(theta)
        if self.phi_norm == 'softmax':
            phi = phi.softmax(dim=-1)  # over the N positions of each channel
        elif self.phi_norm == '1/N':
            # N as a tensor (a Python int would be frozen into a traced graph)
            phi = phi / torch.ones_like(phi[:1, :1]).sum(-1, keepdim=True)
        return theta, phi, self.g(x)

    def _position_matrix(self, h, w, device, dtype) -> torch.Tensor:
        if self.pos_enc == 'dct':
            return dct_position_matrix(h, w, self.dct_size, device, dtype)
        return l1_position_matrix(h, w, self.l1_scale, device, dtype)

    def _normalised_similarity(self, logits: torch.Tensor, h, w):
        """(F / Z, Z') for ``similarity='exp'`` (Eqs. 1, 2, 6, 10).

        a = s, s - l1/50 (l1 'mul': log of e^s L) or log(e^s + L) (l1 'add');
        F / Z = exp(a) / Σ_j exp(a) = softmax_j(a). The DCT L never enters
        (it joins F / Z afterwards, Eq. 7). Z' = Σ_j exp(a_ij - max_j a_ij)
        is Z with the row maximum factored out: a sum of positive terms one
        of which is 1, so 1 <= Z' <= HW for every row, whatever the logits.
        Computed in at least float32 (autocast's bf16 / fp16 logits).
        """
        a = logits.float() if logits.dtype in (torch.float16,
                                               torch.bfloat16) else logits
        if self.pos_enc == 'l1':
            log_l = -l1_distance_matrix(h, w, a.device, a.dtype) / self.l1_scale
            if self.pos_fusion == 'mul':
                a = a + log_l
            else:  # log(e^a + L) = max + log(1 + e^-|a - log L|); exportable
                a = torch.maximum(a, log_l) + torch.log1p(
                    torch.exp(-(a - log_l).abs()))
        e = torch.exp(a - a.amax(dim=-1, keepdim=True))
        z = e.sum(dim=-1, keepdim=True)
        return (e / z).to(logits.dtype), z

    def _pairwise(self, theta, phi, h, w) -> torch.Tensor:
        """The (B, N, N) matrix F that multiplies g (explicit form)."""
        logits = torch.matmul(theta.transpose(1, 2), phi)
        if self.similarity == 'exp':
            f, _ = self._normalised_similarity(logits, h, w)
            if self.pos_enc != 'dct':
                return f
        else:
            f = logits
            if self.pos_enc == 'none':
                return f
        pos = self._position_matrix(h, w, f.device, f.dtype)
        return f + pos if self.pos_fusion == 'add' else f * pos

    def _fused_form(self) -> bool:
        """Whether the explicit F g is a softmax attention (+ Ê [Ê^T g])."""
        return self.similarity == 'exp' and (
            self.pos_enc == 'none'
            or (self.pos_enc == 'l1' and self.pos_fusion == 'mul')
            or (self.pos_enc == 'dct' and self.pos_fusion == 'add'))

    # --- API --------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        b, _, h, w = x.shape
        theta, phi, g = self._embed(x)
        g_tokens = g.flatten(2)  # (B, C', N)
        c = self.inter_channels
        if self.mode == 'efficient':
            # Eq. 5: y = θ^T [φ g]; in (channel, position) layout
            # y^T = [g φ^T] θ, with g φ^T only C' x C'.
            y = torch.matmul(torch.matmul(g_tokens, phi.transpose(1, 2)), theta)
            y = y.reshape(b, c, h, w)
            if self.pos_enc == 'dct':
                y = y + dct_lowpass(g, self.dct_size)  # Eq. 9, second term
        elif self.impl in ('fused', 'auto') and self._fused_form():
            bias = None
            if self.pos_enc == 'l1':  # exp(s) * exp(-l1/50): logit bias
                bias = -l1_distance_matrix(h, w, x.device) / self.l1_scale
            y = softmax_attention(
                theta.transpose(1, 2).unsqueeze(1),
                phi.transpose(1, 2).unsqueeze(1),
                g_tokens.transpose(1, 2).unsqueeze(1),
                scale=1.0, bias=bias, impl=self.impl)
            y = y.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
            if self.pos_enc == 'dct':  # Eq. 7 / 9: + L g, after the softmax
                y = y + dct_lowpass(g, self.dct_size)
        else:
            f = self._pairwise(theta, phi, h, w)
            y = torch.matmul(g_tokens, f.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.conv_out(y)

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, HW, HW): the matrix F with y = F g, formed explicitly.

        For the efficient mode this is the implicit θ_n^T φ_n (+ Ê Ê^T) that
        the reordered product never forms; for analysis only.
        """
        self._check_input(x)
        theta, phi, _ = self._embed(x)
        return self._pairwise(theta, phi, x.shape[2], x.shape[3]).unsqueeze(1)
