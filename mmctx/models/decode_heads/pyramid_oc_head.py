"""Pyramid-OC, the OCNet head of Fig. 5c.

Yuan et al., "OCNet: Object Context for Semantic Segmentation" (IJCV 2021,
arXiv:1809.00916), §3.4 and Appendix H (Eqs. 27-29): 3x3 conv -> 512; four
parallel object context poolings (OCP, SA or ISA) on 1x1, 2x2, 3x3 and 6x6
region partitions (the OCP of a branch shared by its regions, each region
attended independently), each 512 channels; the reduced map raised
512 -> 2048 by a 1x1 conv; concatenation (4096) and 1x1 conv -> 512. Every
convolution is followed by BN and ReLU (``norm_cfg``, SyncBN in the configs).

``variant='official'`` (the released code, see
:mod:`~mmctx.models.decode_heads.object_context_utils`): s x s regions of
floor(H / s) x floor(W / s) with the remainder in the last row / column of
regions (the paper's round() borders, Eq. 27, split 97 rows in 6 as
16, 16, 16, 17, 16, 16 by Python's half-to-even rounding; the release as
16 x 5 + 17); an SA OCP with values of C channels; an ISA OCP is the released
ISA block. In training, the BN layers inside an OCP normalise over the
regions attended in one call (regions of one size), where the release's SA
computes its embeddings over the whole map; in eval mode the two are equal.

A map smaller than s x s for an s x s partition raises a ``ValueError``
naming the head, the partition and the map size. Regions of equal size go
through the branch's OCP as one batch; under ``torch.jit.trace`` the regions
are attended one by one with borders traced from the map size, so a traced
head serves every size.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from .object_context_utils import build_ocp, check_variant

__all__ = ['PyramidOCHead']


REGION_SPLITS = ('round', 'floor')


def _region_bounds(size, parts: int, split: str = 'round') -> list:
    """Borders splitting ``size`` into ``parts`` intervals (Eq. 27).

    ``'round'``: ``round(i * size / parts)`` with Python's half-to-even
    rounding, computed in integers; ``'floor'``: ``i * (size // parts)`` with
    the last interval taking the remainder (the released code). ``size`` may
    be a traced size; the borders then follow it.
    """
    bounds = []
    for i in range(parts):
        if split == 'floor':
            bounds.append(i * (size // parts))
        else:
            q = (i * size) // parts
            r2 = 2 * (i * size - q * parts)
            bounds.append(q + ((r2 > parts) | ((r2 == parts) & (q % 2 == 1))))
    return bounds + [size]


@MODELS.register_module()
class PyramidOCHead(BaseDecodeHead):
    """Pyramid-OC (OCNet, Yuan et al., Fig. 5c, Appendix H Eqs. 27-29).

    Args:
        attention: 'sa' or 'isa'.
        pyramid_scales: region partitions (s x s regions per branch).
        ocp_cfg: extra arguments of the OCPs.
        variant: 'paper' (round() region borders, SA values C/2) or 'official'
            (floor borders with the remainder last, SA values C; module docstring).
        **kwargs: :class:`BaseDecodeHead` arguments (``channels`` = 512).
    """

    def __init__(self, attention: str = 'isa', pyramid_scales: Sequence[int] = (1, 2, 3, 6),
                 ocp_cfg: dict = None, variant: str = 'paper', **kwargs) -> None:
        super().__init__(**kwargs)
        try:
            scales = tuple(pyramid_scales)
        except TypeError:
            scales = ()
        if not scales or any(isinstance(s, bool) or not isinstance(s, int) or s < 1
                             for s in scales):
            raise ValueError(f'pyramid_scales must be positive ints, got {pyramid_scales!r}')
        self.pyramid_scales = scales
        self.variant = check_variant(variant, type(self).__name__)
        self.region_split = 'floor' if variant == 'official' else 'round'
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        n = len(self.pyramid_scales)
        value_channels = self.channels if variant == 'official' else None
        self.reduce = ConvModule(self.in_channels, self.channels, 3, padding=1, **conv)
        self.ocps = nn.ModuleList(
            build_ocp(self.channels, attention, self.norm_cfg, ocp_cfg, variant, value_channels)
            for _ in range(n))
        self.expand = ConvModule(self.channels, n * self.channels, 1, **conv)
        self.fuse = ConvModule(2 * n * self.channels, self.channels, 1, **conv)

    def _pyramid_context(self, x: torch.Tensor, scale: int, ocp: nn.Module) -> torch.Tensor:
        """Z^k of Eq. 28: the OCP applied to each of the scale x scale regions.

        Regions of equal size (there are at most four sizes) are stacked along
        the batch and attended in one call; attention never crosses a region
        border.
        """
        h, w = x.shape[-2:]
        rows = _region_bounds(h, scale, self.region_split)
        cols = _region_bounds(w, scale, self.region_split)
        if torch.jit.is_tracing():  # one call per region, borders traced from x
            return torch.cat([
                torch.cat([ocp(x[..., r0:r1, c0:c1]) for c0, c1 in zip(cols[:-1], cols[1:])],
                          dim=-1) for r0, r1 in zip(rows[:-1], rows[1:])], dim=-2)
        if h < scale or w < scale:
            raise ValueError(
                f'{type(self).__name__}: a {scale}x{scale} region partition needs a '
                f'feature map of at least {scale}x{scale}, got {h}x{w}')
        by_shape = {}
        for r0, r1 in zip(rows[:-1], rows[1:]):
            for c0, c1 in zip(cols[:-1], cols[1:]):
                by_shape.setdefault((r1 - r0, c1 - c0), []).append((r0, r1, c0, c1))
        out = x.new_empty(x.shape[0], self.channels, h, w)
        b = x.shape[0]
        for regions in by_shape.values():
            stacked = torch.cat([x[..., r0:r1, c0:c1] for r0, r1, c0, c1 in regions])
            z = ocp(stacked)
            for i, (r0, r1, c0, c1) in enumerate(regions):
                out[..., r0:r1, c0:c1] = z[i * b:(i + 1) * b]
        return out

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self.reduce(self._transform_inputs(inputs))
        contexts = [self._pyramid_context(x, s, ocp)
                    for s, ocp in zip(self.pyramid_scales, self.ocps)]
        return self.cls_seg(self.fuse(torch.cat(contexts + [self.expand(x)], dim=1)))
