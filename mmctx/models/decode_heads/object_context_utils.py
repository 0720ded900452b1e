"""Pieces shared by the OCNet decode heads (Base-OC, Pyramid-OC, ASP-OC).

Yuan et al., "OCNet: Object Context for Semantic Segmentation" (IJCV 2021,
arXiv:1809.00916), §3.3-3.4 and Fig. 5. Every OCNet head applies object
context pooling (OCP, :class:`~mmctx.models.layers.ObjectContextPooling`,
``attention='sa'`` or ``'isa'``) to the backbone's last feature map; this
module builds that OCP and runs it on a pooled map, the two steps more than
one head needs.

``variant``: ``'paper'`` (every head's default) builds a head as §3.3-3.4
describe it; ``'official'`` reproduces the authors' released code, from
which the paper's tables come, where it differs (each head's docstring says
where). For every head, an ISA OCP of the official variant is the released
ISA block (``InterlacedSparseSelfAttention(variant='official')``: rho
conv-BN-ReLU, values of C channels, symmetric padding). The OCNet
segmentation configs (``configs/ocnet/``) use ``variant='official'``.
Two remaining differences from the release are benign and kept: convs in
front of a BN carry no bias (it cancels in training-mode BN and folds into
the running mean), and concatenations may list their parts in another order
(a permutation of the next conv's input channels).
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS as ROOT_MODELS

from ..layers.checks import check_choice
from ..layers.object_context import OCP_VARIANTS

__all__ = ['check_variant', 'build_ocp', 'pooled_context']


def check_variant(variant: str, owner: str = '') -> str:
    """``variant`` if it is ``'paper'`` or ``'official'``, else a ValueError."""
    return check_choice('variant', variant, OCP_VARIANTS, owner=owner)


def build_ocp(channels: int, attention: str, norm_cfg: Optional[dict],
              ocp_cfg: Optional[dict], variant: str = 'paper',
              value_channels: Optional[int] = None) -> nn.Module:
    """The OCP of a head, built from the root registry.

    ``variant='official'`` selects the released ISA block and
    ``value_channels`` (if given) the SA value width, unless ``ocp_cfg`` (the
    head's extra OCP arguments, e.g. ``groups``, ``impl``) says otherwise.
    """
    cfg = dict(type='ObjectContextPooling', in_channels=channels, attention=attention,
               norm_cfg=norm_cfg)
    if variant == 'official' and attention == 'isa':
        cfg['variant'] = 'official'
    if value_channels is not None and attention == 'sa':
        cfg['value_channels'] = value_channels
    cfg.update(ocp_cfg or {})
    return ROOT_MODELS.build(cfg)


def pooled_context(ocp: nn.Module, x: torch.Tensor, factor: int, official: bool,
                   align_corners: bool) -> torch.Tensor:
    """The OCP on ``x`` pooled by ``factor``, upsampled back to ``x``'s size.

    ``official``: max pooling with floor (a side shorter than the factor is
    not pooled) and ``align_corners=True`` upsampling, as the released SA
    block's ``scale``; else average pooling with ceil and the head's
    ``align_corners``.
    """
    if official:
        h, w = x.shape[-2:]
        kernel = (factor, factor) if torch.jit.is_tracing() else (min(factor, h), min(factor, w))
        small, align_corners = F.max_pool2d(x, kernel), True
    else:
        small = F.avg_pool2d(x, factor, ceil_mode=True)
    return F.interpolate(ocp(small), size=x.shape[-2:], mode='bilinear',
                         align_corners=align_corners)
