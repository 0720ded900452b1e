"""Compact generalized non-local block (CGNL): Yue, Sun, Yuan, Zhou, Ding, Xu,
"Compact Generalized Non-local Network", NeurIPS 2018 (arXiv:1810.13125).

CGNL treats every (channel, position) pair of a channel group as one element:
for group g, with theta, phi and g flattened to vectors of length C_g * H * W
(Yue et al. Eq. 5)::

    y_(c,i) = sum_(c',j) f(theta_(c,i), phi_(c',j)) g_(c',j)

and factorises the kernel f so the sum is linear in C * H * W:

- dot product: f(a, b) = a b  ->  y = theta * <phi, g>
  (optionally / sqrt(C_g H W), ``use_scale``);
- Gaussian, Taylor-expanded to order P (Yue et al. Eq. 7):
  f(a, b) = exp(-gamma (a - b)^2) ~ beta * sum_(p=0..P) (2 gamma)^p / p! a^p b^p,
  with beta = exp(-2 gamma) (the authors' unit-norm approximation of
  exp(-gamma (a^2 + b^2))), giving
  y = beta * sum_p c_p theta^p <c_p phi^p, g>,  c_p = sqrt((2 gamma)^p / p!).

The groups' outputs go through a grouped 1x1 conv, GroupNorm and a residual
add. The block has no ``get_attention``: its kernel matrix
f(theta_(c,i), phi_(c',j)) has (C_g H W)^2 entries, is not normalised and is
exactly what the block avoids forming. Its weights keep PyTorch's default
initialisation (no identity start, so no ``init_weights``).
"""
import math

import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .checks import check_channels, check_choice, check_int

__all__ = ['CompactGeneralizedNonLocal2d']


@MODELS.register_module()
class CompactGeneralizedNonLocal2d(nn.Module):
    """CGNL block (Yue et al. Eqs. 5-7) with channel groups; shape-preserving.

    Args:
        in_channels: C.
        planes: channels of theta / phi / g (default ``C // 2``).
        groups: channel groups (must divide ``planes`` and C).
        kernel: ``'dot'`` or ``'gaussian'`` (Taylor-expanded, Eq. 7).
        use_scale: divide <phi, g> by sqrt(C_g H W).
        order: Taylor order P of the Gaussian kernel.
        gamma: gamma of the Gaussian kernel.
    """
    _abbr_ = 'cgnl'
    identity_start = False  # PyTorch's default init

    def __init__(self, in_channels: int, planes: int = None, groups: int = 8,
                 kernel: str = 'dot', use_scale: bool = False, order: int = 3,
                 gamma: float = 1e-4) -> None:
        super().__init__()
        check_channels('in_channels', in_channels)
        planes = planes or in_channels // 2
        check_channels('planes', planes)
        check_int('groups', groups)
        check_choice('kernel', kernel, ('dot', 'gaussian'))
        check_int('order', order, 0)
        if planes % groups or in_channels % groups:
            raise ValueError(f'planes={planes} and in_channels={in_channels} must be '
                             f'divisible by groups={groups}')
        self.in_channels = in_channels
        self.planes = planes
        self.groups, self.kernel, self.use_scale = groups, kernel, use_scale
        self.order, self.gamma = order, gamma
        self.theta = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.phi = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.g = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.z = nn.Conv2d(planes, in_channels, 1, groups=groups, bias=False)
        self.gn = nn.GroupNorm(groups, in_channels)

    @staticmethod
    def _length_sqrt(t):
        """sqrt(L) as a tensor: kept symbolic under ``torch.jit.trace`` / ONNX
        export (``math.sqrt`` of the size would freeze the traced size)."""
        return (t.new_ones(()) * t.shape[1]).sqrt()

    def _group_kernel(self, t, p, g):
        """t, p, g: (B, L) flattened (channel, position) vectors of one group."""
        if self.kernel == 'dot':
            att = (p * g).sum(1, keepdim=True)
            if self.use_scale:
                att = att / self._length_sqrt(t)
            return att * t
        out = 0
        for k in range(self.order + 1):
            coeff = math.sqrt((2 * self.gamma)**k / math.factorial(k))
            att = (coeff * p.pow(k) * g).sum(1, keepdim=True)
            if self.use_scale:
                att = att / self._length_sqrt(t)
            out = out + att * coeff * t.pow(k)
        return math.exp(-2 * self.gamma) * out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        per_group = self.planes // self.groups * h * w  # explicit: a batch of 0
        t, p, g = (m(x).reshape(b, self.groups, per_group)
                   for m in (self.theta, self.phi, self.g))
        y = torch.stack([self._group_kernel(t[:, i], p[:, i], g[:, i])
                         for i in range(self.groups)], dim=1)
        return x + self.gn(self.z(y.reshape(b, self.planes, h, w)))
