"""FCN + Compact Generalized Non-local (Yue et al., NeurIPS 2018), a comparison head of Yuan et al. (OCNet).

CGNL treats every (channel, position) pair of a channel group as one element, so that for
group g with vectors theta, phi, g of length C_g * H * W (Yue et al. Eq. 5)::

    y_(c,i) = sum_(c',j) f(theta_(c,i), phi_(c',j)) g_(c',j)

and factorises the kernel f so the sum is linear in C*H*W:
- dot product: f(a, b) = a b  ->  y = theta * <phi, g>  (optionally / sqrt(C_g H W));
- Gaussian, Taylor-expanded to order P (Yue et al. Eq. 7):
  f(a, b) = exp(-gamma (a - b)^2) ~ beta * sum_(p=0..P) (2 gamma)^p / p! a^p b^p, with
  beta = exp(-2 gamma) (unit-norm approximation of exp(-gamma(a^2 + b^2)) used by the
  authors), giving y = beta * sum_p c_p theta^p <c_p phi^p, g>, c_p = sqrt((2 gamma)^p / p!).
The groups' outputs go through a grouped 1x1 conv, GroupNorm and a residual add. Head
layout as mmseg's NLHead: conv 3x3 -> block -> conv 3x3 -> (concat input) -> classifier.
"""
import math

import torch
import torch.nn as nn
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

__all__ = ['CompactGeneralizedNonLocal2d', 'CGNLHead']


class CompactGeneralizedNonLocal2d(nn.Module):
    """CGNL block (Yue et al. Eqs. 5-7) with channel groups."""

    def __init__(self, in_channels: int, planes: int = None, groups: int = 8,
                 kernel: str = 'dot', use_scale: bool = False, order: int = 3,
                 gamma: float = 1e-4) -> None:
        super().__init__()
        planes = planes or in_channels // 2
        if kernel not in ('dot', 'gaussian'):
            raise ValueError(f"kernel must be 'dot' or 'gaussian', got {kernel!r}")
        if planes % groups or in_channels % groups:
            raise ValueError(f'planes={planes} and in_channels={in_channels} must be '
                             f'divisible by groups={groups}')
        self.groups, self.kernel, self.use_scale = groups, kernel, use_scale
        self.order, self.gamma = order, gamma
        self.theta = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.phi = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.g = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.z = nn.Conv2d(planes, in_channels, 1, groups=groups, bias=False)
        self.gn = nn.GroupNorm(groups, in_channels)

    def _group_kernel(self, t, p, g):
        """t, p, g: (B, L) flattened (channel, position) vectors of one group."""
        if self.kernel == 'dot':
            att = (p * g).sum(1, keepdim=True)
            if self.use_scale:
                att = att / math.sqrt(t.shape[1])
            return att * t
        out = 0
        for k in range(self.order + 1):
            coeff = math.sqrt((2 * self.gamma) ** k / math.factorial(k))
            att = (coeff * p.pow(k) * g).sum(1, keepdim=True)
            if self.use_scale:
                att = att / math.sqrt(t.shape[1])
            out = out + att * coeff * t.pow(k)
        return math.exp(-2 * self.gamma) * out

    def forward(self, x):
        b, _, h, w = x.shape
        t, p, g = (m(x).view(b, self.groups, -1) for m in (self.theta, self.phi, self.g))
        y = torch.stack([self._group_kernel(t[:, i], p[:, i], g[:, i])
                         for i in range(self.groups)], dim=1)
        return x + self.gn(self.z(y.view(b, -1, h, w)))


@MODELS.register_module()
class CGNLHead(FCNHead):
    """FCN head with :class:`CompactGeneralizedNonLocal2d` between its two 3x3 convs.

    Args:
        groups / kernel / use_scale / order / gamma / planes: CGNL block arguments.
        **kwargs: :class:`FCNHead` arguments (``num_convs`` fixed to 2).
    """

    def __init__(self, groups: int = 8, kernel: str = 'dot', use_scale: bool = False,
                 order: int = 3, gamma: float = 1e-4, planes: int = None, **kwargs) -> None:
        super().__init__(num_convs=2, **kwargs)
        self.cgnl_block = CompactGeneralizedNonLocal2d(
            self.channels, planes, groups, kernel, use_scale, order, gamma)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        output = self.convs[1](self.cgnl_block(self.convs[0](x)))
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
