"""OCNet decode heads: Base-OC, Pyramid-OC and ASP-OC (seed 004 §3.3-3.4, Fig. 5).

Each head applies object context pooling (OCP, :class:`ObjectContextPooling`,
with ``attention='sa'`` or ``'isa'``) to the backbone's last feature map:

* Base-OC (Fig. 5b): 3x3 conv C_in -> 512, OCP, concatenation of the OCP
  output with its input, 1x1 conv 1024 -> 512.
* Pyramid-OC (Fig. 5c): 3x3 conv -> 512; four parallel OCPs on 1x1, 2x2,
  3x3 and 6x6 region partitions (the OCP of a branch shared by its regions,
  each region attended independently), each 512 channels; the reduced map
  raised 512 -> 2048 by a 1x1 conv; concatenation (4096) and 1x1 conv -> 512.
* ASP-OC (Fig. 5d): ASPP with its image-pooling branch replaced by
  3x3 conv -> 256 + OCP; with the 1x1 and the dilated 3x3 (12, 24, 36)
  branches, 1280 channels, 1x1 conv -> 256.

All convolutions are followed by BN and ReLU (``norm_cfg``, SyncBN in the
configs). Every head defaults to ``attention='isa'`` with P_h = P_w = 8, the
paper's default (§4.3).

SA-2x (seed 004 Table 3, "we directly down-sample the feature map for 2x
before computing the dense relation matrix") is ``BaseOCHead(attention='sa',
downsample=2)``: the OCP runs on the 2x average-pooled map and its output is
bilinearly upsampled back, so queries, keys and values are all at half
resolution.

Pyramid-OC splits an H x W map into s x s regions with borders at
round(i * H / s) and round(j * W / s) (Appendix H, Eq. 27, for maps not
divisible by s); regions of equal size go through the branch's OCP as one
batch (so in training its BNs see them together). It needs a map of at least
s x s for an s x s partition; a smaller map raises a ``ValueError`` naming
the head, the partition and the map size.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmengine.registry import MODELS as ROOT_MODELS

__all__ = ['BaseOCHead', 'PyramidOCHead', 'ASPOCHead']


def _ocp(channels, attention, norm_cfg, ocp_cfg):
    cfg = dict(type='ObjectContextPooling', in_channels=channels, attention=attention,
               norm_cfg=norm_cfg)
    cfg.update(ocp_cfg or {})
    return ROOT_MODELS.build(cfg)


@MODELS.register_module()
class BaseOCHead(BaseDecodeHead):
    """Base-OC (seed 004 Fig. 5b).

    Args:
        attention: 'sa' or 'isa' (the OCP's relation scheme).
        ocp_cfg: extra arguments of the OCP (e.g. ``groups=(8, 8)``, ``impl``).
        downsample: run the OCP on the map average-pooled by this factor and
            upsample its output back (2 is seed 004 Table 3's 'SA-2x').
        **kwargs: :class:`BaseDecodeHead` arguments (``channels`` = 512).
    """

    def __init__(self, attention: str = 'isa', ocp_cfg: dict = None,
                 downsample: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if downsample < 1:
            raise ValueError(f'downsample must be >= 1, got {downsample}')
        self.downsample = downsample
        self.reduce = ConvModule(self.in_channels, self.channels, 3, padding=1,
                                 conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                 act_cfg=self.act_cfg)
        self.ocp = _ocp(self.channels, attention, self.norm_cfg, ocp_cfg)
        self.fuse = ConvModule(2 * self.channels, self.channels, 1, conv_cfg=self.conv_cfg,
                               norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def _context(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample == 1:
            return self.ocp(x)
        small = F.avg_pool2d(x, self.downsample, ceil_mode=True)
        return F.interpolate(self.ocp(small), size=x.shape[-2:], mode='bilinear',
                             align_corners=self.align_corners)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self.reduce(self._transform_inputs(inputs))
        return self.cls_seg(self.fuse(torch.cat([x, self._context(x)], dim=1)))


def _region_bounds(size: int, parts: int) -> List[int]:
    """Boundaries splitting ``size`` into ``parts`` near-equal intervals."""
    return [round(i * size / parts) for i in range(parts + 1)]


@MODELS.register_module()
class PyramidOCHead(BaseDecodeHead):
    """Pyramid-OC (seed 004 Fig. 5c).

    Args:
        attention: 'sa' or 'isa'.
        pyramid_scales: region partitions (s x s regions per branch).
        ocp_cfg: extra arguments of the OCPs.
        **kwargs: :class:`BaseDecodeHead` arguments (``channels`` = 512).
    """

    def __init__(self, attention: str = 'isa', pyramid_scales: Sequence[int] = (1, 2, 3, 6),
                 ocp_cfg: dict = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pyramid_scales = tuple(pyramid_scales)
        if not self.pyramid_scales or min(self.pyramid_scales) < 1:
            raise ValueError(f'pyramid_scales must be positive ints, got {pyramid_scales}')
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        n = len(self.pyramid_scales)
        self.reduce = ConvModule(self.in_channels, self.channels, 3, padding=1, **conv)
        self.ocps = nn.ModuleList(
            _ocp(self.channels, attention, self.norm_cfg, ocp_cfg) for _ in range(n))
        self.expand = ConvModule(self.channels, n * self.channels, 1, **conv)
        self.fuse = ConvModule(2 * n * self.channels, self.channels, 1, **conv)

    def _pyramid_context(self, x: torch.Tensor, scale: int, ocp: nn.Module) -> torch.Tensor:
        """Z^k of Eq. 28: the OCP applied to each of the scale x scale regions.

        Regions of equal size (they differ by at most one row / column) are
        stacked along the batch and attended in one call; attention never
        crosses a region border.
        """
        h, w = x.shape[-2:]
        if h < scale or w < scale:
            raise ValueError(
                f'{type(self).__name__}: a {scale}x{scale} region partition needs a '
                f'feature map of at least {scale}x{scale}, got {h}x{w}')
        rows, cols = _region_bounds(h, scale), _region_bounds(w, scale)
        by_shape = {}
        for r0, r1 in zip(rows[:-1], rows[1:]):
            for c0, c1 in zip(cols[:-1], cols[1:]):
                by_shape.setdefault((r1 - r0, c1 - c0), []).append((r0, r1, c0, c1))
        out = torch.empty_like(x)
        b = x.shape[0]
        for regions in by_shape.values():
            stacked = torch.cat([x[..., r0:r1, c0:c1] for r0, r1, c0, c1 in regions])
            for i, z in enumerate(ocp(stacked).split(b)):
                r0, r1, c0, c1 = regions[i]
                out[..., r0:r1, c0:c1] = z
        return out

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self.reduce(self._transform_inputs(inputs))
        contexts = [self._pyramid_context(x, s, ocp)
                    for s, ocp in zip(self.pyramid_scales, self.ocps)]
        return self.cls_seg(self.fuse(torch.cat(contexts + [self.expand(x)], dim=1)))


@MODELS.register_module()
class ASPOCHead(BaseDecodeHead):
    """ASP-OC (seed 004 Fig. 5d).

    Args:
        attention: 'sa' or 'isa'.
        dilations: rates of the three dilated 3x3 branches.
        ocp_cfg: extra arguments of the OCP.
        **kwargs: :class:`BaseDecodeHead` arguments (``channels`` = 256).
    """

    def __init__(self, attention: str = 'isa', dilations: Sequence[int] = (12, 24, 36),
                 ocp_cfg: dict = None, **kwargs) -> None:
        super().__init__(**kwargs)
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.context_reduce = ConvModule(self.in_channels, self.channels, 3, padding=1,
                                         **conv)
        self.ocp = _ocp(self.channels, attention, self.norm_cfg, ocp_cfg)
        self.branches = nn.ModuleList(
            [ConvModule(self.in_channels, self.channels, 1, **conv)] +
            [ConvModule(self.in_channels, self.channels, 3, padding=d, dilation=d, **conv)
             for d in dilations])
        self.fuse = ConvModule((len(dilations) + 2) * self.channels, self.channels, 1,
                               **conv)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self._transform_inputs(inputs)
        outs = [self.ocp(self.context_reduce(x))] + [b(x) for b in self.branches]
        return self.cls_seg(self.fuse(torch.cat(outs, dim=1)))
