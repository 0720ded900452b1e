"""Efficient non-local (ENL) block of seed 003 (Levi & Ullman), and its explicit NL.

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
"NL softmax" and Table 3's baseline), with a position term L fused by Eq. 6
(``pos_fusion='add'|'mul'``): ``pos_enc='l1'`` L(i, j) = exp(-l1(i, j) / 50),
or ``'dct'`` L = Ê Ê^T. The block returns ``x + o(y)`` (Eq. 3); weights are
initialised N(0, 0.01) and no normalisation layer is used inside (§4).

Where the explicit F / Z is a plain softmax (``'exp'`` without position, or
with the l1 term multiplied, i.e. a logit bias -l1/50) it runs through
``F.scaled_dot_product_attention`` (``impl='fused'``), the formed matrix
staying as the ``impl='explicit'`` reference.
"""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .attention import check_impl, softmax_attention

__all__ = [
    'dct_basis', 'dct_lowpass', 'dct_position_matrix', 'l1_distance_matrix',
    'l1_position_matrix',
    'EfficientNonLocal2d'
]


def dct_basis(n: int, k: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(n, k): the first k columns of the orthonormal 1D DCT-II matrix.

    Column u is the frequency-u basis vector evaluated at positions 0..n-1,
    ``c_u cos(pi (2y + 1) u / (2n))`` with c_0 = sqrt(1/n), c_u = sqrt(2/n),
    so row y holds the DCT coefficients of a one-hot signal at y (seed 003
    §3.3's e(i), in 1D). ``k`` is clipped to ``n``.
    """
    k = min(k, n)
    y = torch.arange(n, dtype=torch.float64, device=device).unsqueeze(1)
    u = torch.arange(k, dtype=torch.float64, device=device).unsqueeze(0)
    basis = torch.cos(math.pi * (2 * y + 1) * u / (2 * n)) * math.sqrt(2 / n)
    basis[:, 0] = math.sqrt(1 / n)
    return basis.to(dtype)


def dct_lowpass(g: torch.Tensor, size: int = 9) -> torch.Tensor:
    """Ê [Ê^T g] of seed 003 Eq. 9 for maps g of shape (B, C, H, W).

    Ê (HW x k_h k_w) keeps the 2D DCT frequencies (u, v) with u < k_h =
    min(size, H), v < k_w = min(size, W). Since Ê = E_h ⊗ E_w, Ê^T g is
    E_h^T G E_w per channel and Ê [.] is E_h [.] E_w^T: O(HW k) memory.
    """
    h, w = g.shape[-2:]
    dtype = g.dtype if g.dtype.is_floating_point else torch.float32
    eh = dct_basis(h, size, g.device, dtype)
    ew = dct_basis(w, size, g.device, dtype)
    coef = torch.matmul(torch.matmul(eh.t(), g), ew)  # (B, C, k_h, k_w)
    return torch.matmul(torch.matmul(eh, coef), ew.t())


def dct_position_matrix(h: int, w: int, size: int = 9, device=None,
                        dtype=torch.float32) -> torch.Tensor:
    """(HW, HW) low-pass filter L = Ê Ê^T of seed 003 Eq. 8, formed.

    For the explicit mode and for analysis only.
    """
    eh = dct_basis(h, size, device, dtype)
    ew = dct_basis(w, size, device, dtype)
    return torch.kron(eh @ eh.t(), ew @ ew.t())


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
    """(HW, HW) L(i, j) = exp(-l1(i, j) / scale), seed 003 §3.3 (scale 50)."""
    return torch.exp(-l1_distance_matrix(h, w, device, dtype) / scale)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f'{name} must be one of {choices}, got {value!r}')


@MODELS.register_module()
class EfficientNonLocal2d(nn.Module):
    """ENL block (seed 003 §3.2-3.3) and the explicit NL of the same family.

    Args:
        in_channels: C of the input (B, C, H, W).
        reduction: θ, φ, g have ``C // reduction`` channels.
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
        pos_enc: ``'none'``, ``'dct'`` (L = Ê Ê^T, Eqs. 8-9) or, explicit
            mode only, ``'l1'`` (L = exp(-l1 / l1_scale), Eq. 6).
        pos_fusion: ``'add'`` (F + L) or, explicit mode only, ``'mul'``
            (F ⊙ L), Eq. 6 / Table 3. With ``'exp'`` L is fused with
            exp(θ^T φ) before the division by Z.
        dct_size: lowest frequencies kept per axis (9 -> 9x9 columns of Ê).
        l1_scale: the 50 of exp(-l1 / 50).
        init_std: std of the N(0, std) init of every conv (biases 0), §4.
        impl: for ``similarity='exp'`` without position term or with
            ``pos_enc='l1', pos_fusion='mul'`` (exp(s) * exp(-l1/50) is a
            softmax with the logit bias -l1/50), ``'fused'`` runs
            ``F.scaled_dot_product_attention``; ``'explicit'`` forms F. The
            other configurations have no softmax to fuse (``'dot'``: use
            ``mode='efficient'``, the fast path) and always form F.
    """
    _abbr_ = 'enl'

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
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, got '
                             f'{in_channels!r}')
        if (not isinstance(reduction, int) or reduction < 1
                or in_channels % reduction != 0):
            raise ValueError(f'reduction={reduction!r} must be a positive int '
                             f'dividing in_channels={in_channels}')
        _check_choice('mode', mode, ('efficient', 'explicit'))
        _check_choice('similarity', similarity, ('dot', 'exp'))
        if phi_norm is None:
            phi_norm = 'softmax' if similarity == 'dot' else 'none'
        _check_choice('phi_norm', phi_norm, ('softmax', '1/N', 'none'))
        _check_choice('theta_norm', theta_norm, ('none', 'tanh'))
        _check_choice('pos_enc', pos_enc, ('none', 'dct', 'l1'))
        _check_choice('pos_fusion', pos_fusion, ('add', 'mul'))
        if mode == 'efficient':
            if similarity != 'dot':
                raise ValueError("similarity='exp' needs the formed matrix: "
                                 "use mode='explicit'")
            if pos_enc == 'l1':
                raise ValueError("pos_enc='l1' is not low-rank (seed 003 "
                                 "§3.3): use mode='explicit' or pos_enc='dct'")
            if pos_enc != 'none' and pos_fusion != 'add':
                raise ValueError("pos_fusion='mul' breaks the low-rank product "
                                 "of Eq. 9: use pos_fusion='add' or "
                                 "mode='explicit'")
        if similarity == 'exp' and (phi_norm != 'none' or theta_norm != 'none'):
            raise ValueError("similarity='exp' normalises by Z = sum_j F "
                             "(Eq. 10): phi_norm and theta_norm must be 'none'")
        if not isinstance(dct_size, int) or dct_size < 1:
            raise ValueError(f'dct_size must be a positive int, got {dct_size!r}')
        if not l1_scale > 0:
            raise ValueError(f'l1_scale must be > 0, got {l1_scale!r}')
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

    # --- pieces -----------------------------------------------------------
    def _embed(self, x: torch.Tensor):
        """θ_n, φ_n (B, C', N) after the Table 5 normalisations; g (B, C', H, W)."""
        theta = self.theta(x).flatten(2)
        phi = self.phi(x).flatten(2)
        if self.theta_norm == 'tanh':
            theta = torch.tanh(theta)
        if self.phi_norm == 'softmax':
            phi = phi.softmax(dim=-1)  # over the N positions of each channel
        elif self.phi_norm == '1/N':
            phi = phi / phi.shape[-1]
        return theta, phi, self.g(x)

    def _position_matrix(self, h, w, device, dtype) -> torch.Tensor:
        if self.pos_enc == 'dct':
            return dct_position_matrix(h, w, self.dct_size, device, dtype)
        return l1_position_matrix(h, w, self.l1_scale, device, dtype)

    def _pairwise(self, theta, phi, h, w) -> torch.Tensor:
        """The (B, N, N) matrix F that multiplies g (explicit form)."""
        logits = torch.matmul(theta.transpose(1, 2), phi)
        pos = None
        if self.pos_enc != 'none':
            pos = self._position_matrix(h, w, logits.device, logits.dtype)
        if self.similarity == 'dot':
            if pos is None:
                return logits
            return logits + pos if self.pos_fusion == 'add' else logits * pos
        # Eq. 2 / 10: F = exp(s) [+ or *] L, divided by Z = sum_j F. The row
        # maximum m (at least 0) is factored out of exp(s) and of L for 'add'.
        m = logits.amax(dim=-1, keepdim=True).clamp(min=0)
        f = torch.exp(logits - m)
        if pos is not None:
            f = f + pos * torch.exp(-m) if self.pos_fusion == 'add' else f * pos
        return f / f.sum(dim=-1, keepdim=True)

    def _softmax_form(self) -> bool:
        """Whether F / Z is a plain softmax of (biased) logits."""
        return self.similarity == 'exp' and (
            self.pos_enc == 'none'
            or (self.pos_enc == 'l1' and self.pos_fusion == 'mul'))

    # --- API --------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        theta, phi, g = self._embed(x)
        g_tokens = g.flatten(2)  # (B, C', N)
        if self.mode == 'efficient':
            # Eq. 5: y = θ^T [φ g]; in (channel, position) layout
            # y^T = [g φ^T] θ, with g φ^T only C' x C'.
            y = torch.matmul(torch.matmul(g_tokens, phi.transpose(1, 2)), theta)
            y = y.view(b, -1, h, w)
            if self.pos_enc == 'dct':
                y = y + dct_lowpass(g, self.dct_size)  # Eq. 9, second term
        elif self.impl == 'fused' and self._softmax_form():
            bias = None
            if self.pos_enc == 'l1':  # exp(s) * exp(-l1/50): logit bias
                bias = -l1_distance_matrix(h, w, x.device) / self.l1_scale
            y = softmax_attention(
                theta.transpose(1, 2).unsqueeze(1),
                phi.transpose(1, 2).unsqueeze(1),
                g_tokens.transpose(1, 2).unsqueeze(1),
                scale=1.0, bias=bias, impl='fused')
            y = y.squeeze(1).transpose(1, 2).reshape(b, -1, h, w)
        else:
            f = self._pairwise(theta, phi, h, w)
            y = torch.matmul(g_tokens, f.transpose(1, 2)).view(b, -1, h, w)
        return x + self.conv_out(y)

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, HW, HW): the matrix F with y = F g, formed explicitly.

        For the efficient mode this is the implicit θ_n^T φ_n (+ Ê Ê^T) that
        the reordered product never forms; for analysis only.
        """
        theta, phi, _ = self._embed(x)
        return self._pairwise(theta, phi, x.shape[2], x.shape[3]).unsqueeze(1)
