"""OCNet decode heads: Base-OC, Pyramid-OC and ASP-OC.

Yuan et al., "OCNet: Object Context for Semantic Segmentation" (IJCV 2021),
§3.3-3.4 and Fig. 5. Each head applies object context pooling (OCP,
:class:`ObjectContextPooling`, with ``attention='sa'`` or ``'isa'``) to the
backbone's last feature map:

* Base-OC (Fig. 5b): 3x3 conv C_in -> 512, OCP, concatenation of the OCP
  output with its input, 1x1 conv 1024 -> 512.
* Pyramid-OC (Fig. 5c): 3x3 conv -> 512; four parallel OCPs on 1x1, 2x2,
  3x3 and 6x6 region partitions (the OCP of a branch shared by its regions,
  each region attended independently, Appendix H Eqs. 27-29), each 512
  channels; the reduced map raised 512 -> 2048 by a 1x1 conv; concatenation
  (4096) and 1x1 conv -> 512.
* ASP-OC (Fig. 5d): ASPP with its image-pooling branch replaced by
  3x3 conv -> 256 + OCP; with the 1x1 and the dilated 3x3 (12, 24, 36)
  branches, 1280 channels, 1x1 conv -> 256.

All convolutions are followed by BN and ReLU (``norm_cfg``, SyncBN in the
configs). Every head defaults to ``attention='isa'`` with P_h = P_w = 8, the
paper's default (§4.3).

``variant``: ``'paper'`` (the default) builds the heads as the text above
describes; ``'official'`` reproduces the authors' released code, from which
the paper's tables come, where it differs:

* every head: an ISA OCP is the released ISA block
  (``InterlacedSparseSelfAttention(variant='official')``: rho conv-BN-ReLU,
  values of C channels, symmetric padding);
* Base-OC with ``downsample`` (SA-2x): the OCP runs on the map max-pooled
  (floor) by the factor and its output is upsampled with
  ``align_corners=True``, as the released SA block with ``scale=2``;
* Pyramid-OC: s x s regions of floor(H / s) x floor(W / s) with the remainder
  in the last row / column of regions (the paper's round() borders, Eq. 27,
  split 97 rows in 6 as 16, 16, 16, 17, 16, 16 by Python's half-to-even
  rounding; the release as 16 x 5 + 17); an SA OCP with values of C channels;
* ASP-OC: a 3x3 conv C_in -> 512 (conv-BN-ReLU) in front of all five
  branches (the release's ``context`` module); with SA the OCP runs on the
  2x max-pooled map, is upsampled back (``align_corners=True``) and followed
  by BN-ReLU (the released ``ASP_OC_Module``; its ISA counterpart has neither);
  the five 256-channel branches are fused to 512, not 256.

The OCNet segmentation configs (``configs/ocnet/``) use ``variant='official'``
because their rows report the paper's numbers, which that code produced.
Two remaining differences from the release are benign and kept: convs in
front of a BN carry no bias (it cancels in training-mode BN and folds into the
running mean), and concatenations may list their parts in another order
(a permutation of the next conv's input channels). In training, the BN layers
inside a Pyramid-OC OCP normalise over the regions attended in one call
(regions of one size), where the release's SA computes its embeddings over
the whole map; in eval mode the two are equal.

Pyramid-OC needs a map of at least s x s for an s x s partition; a smaller
map raises a ``ValueError`` naming the head, the partition and the map size.
Regions of equal size go through the branch's OCP as one batch; under
``torch.jit.trace`` the regions are attended one by one with borders traced
from the map size, so a traced head serves every size.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmengine.registry import MODELS as ROOT_MODELS

from ..layers.object_context import OCP_VARIANTS, check_int

__all__ = ['BaseOCHead', 'PyramidOCHead', 'ASPOCHead']


def _check_variant(variant: str) -> str:
    if variant not in OCP_VARIANTS:
        raise ValueError(f'variant must be one of {OCP_VARIANTS}, got {variant!r}')
    return variant


def _ocp(channels, attention, norm_cfg, ocp_cfg, variant='paper', value_channels=None):
    """Build the OCP; ``variant='official'`` selects the released ISA block and
    ``value_channels`` (if given) the SA value width, unless ``ocp_cfg`` says."""
    cfg = dict(type='ObjectContextPooling', in_channels=channels, attention=attention,
               norm_cfg=norm_cfg)
    if variant == 'official' and attention == 'isa':
        cfg['variant'] = 'official'
    if value_channels is not None and attention == 'sa':
        cfg['value_channels'] = value_channels
    cfg.update(ocp_cfg or {})
    return ROOT_MODELS.build(cfg)


def _pooled(ocp: nn.Module, x: torch.Tensor, factor: int, official: bool,
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


@MODELS.register_module()
class BaseOCHead(BaseDecodeHead):
    """Base-OC (OCNet, Yuan et al., Fig. 5b).

    Args:
        attention: 'sa' or 'isa' (the OCP's relation scheme).
        ocp_cfg: extra arguments of the OCP (e.g. ``groups=(8, 8)``, ``impl``).
        downsample: run the OCP on the map pooled by this factor and upsample
            its output back (2 is Table 3's 'SA-2x').
        variant: 'paper' or 'official' (module docstring).
        **kwargs: :class:`BaseDecodeHead` arguments (``channels`` = 512).
    """

    def __init__(self, attention: str = 'isa', ocp_cfg: dict = None,
                 downsample: int = 1, variant: str = 'paper', **kwargs) -> None:
        super().__init__(**kwargs)
        self.downsample = check_int('downsample', downsample, owner=type(self).__name__)
        self.variant = _check_variant(variant)
        self.reduce = ConvModule(self.in_channels, self.channels, 3, padding=1,
                                 conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                 act_cfg=self.act_cfg)
        self.ocp = _ocp(self.channels, attention, self.norm_cfg, ocp_cfg, variant)
        self.fuse = ConvModule(2 * self.channels, self.channels, 1, conv_cfg=self.conv_cfg,
                               norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def _context(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample == 1:
            return self.ocp(x)
        return _pooled(self.ocp, x, self.downsample, self.variant == 'official',
                       self.align_corners)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self.reduce(self._transform_inputs(inputs))
        return self.cls_seg(self.fuse(torch.cat([x, self._context(x)], dim=1)))


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
        self.variant = _check_variant(variant)
        self.region_split = 'floor' if variant == 'official' else 'round'
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        n = len(self.pyramid_scales)
        value_channels = self.channels if variant == 'official' else None
        self.reduce = ConvModule(self.in_channels, self.channels, 3, padding=1, **conv)
        self.ocps = nn.ModuleList(
            _ocp(self.channels, attention, self.norm_cfg, ocp_cfg, variant, value_channels)
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


@MODELS.register_module()
class ASPOCHead(BaseDecodeHead):
    """ASP-OC (OCNet, Yuan et al., Fig. 5d).

    Args:
        attention: 'sa' or 'isa'.
        dilations: rates of the three dilated 3x3 branches.
        ocp_cfg: extra arguments of the OCP.
        variant: 'paper' or 'official' (module docstring): the official head
            has a 3x3 conv C_in -> ``pre_channels`` in front, fuses the five
            branches to ``2 * channels`` and, with SA, pools the OCP's input
            by ``context_downsample`` (2) and adds BN-ReLU after it.
        pre_channels: output of the official head's front conv (default
            ``2 * channels``, 512 as released).
        **kwargs: :class:`BaseDecodeHead` arguments (``channels`` = 256).
    """

    def __init__(self, attention: str = 'isa', dilations: Sequence[int] = (12, 24, 36),
                 ocp_cfg: dict = None, variant: str = 'paper', pre_channels: int = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        try:
            dilations = tuple(dilations)
        except TypeError:
            dilations = ()
        if not dilations:
            raise ValueError(f'{owner}: dilations must be positive ints, got {dilations!r}')
        self.dilations = tuple(check_int('dilations', d, owner=owner) for d in dilations)
        self.variant = _check_variant(variant)
        official = variant == 'official'
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        c_in = self.in_channels
        self.pre_reduce = None
        if official:
            c_in = check_int('pre_channels', pre_channels, allow_none=True,
                             owner=owner) or 2 * self.channels
            self.pre_reduce = ConvModule(self.in_channels, c_in, 3, padding=1, **conv)
        self.context_reduce = ConvModule(c_in, self.channels, 3, padding=1, **conv)
        self.ocp = _ocp(self.channels, attention, self.norm_cfg, ocp_cfg, variant)
        self.context_downsample = 2 if official and attention == 'sa' else 1
        self.context_post = None
        if official and attention == 'sa':
            self.context_post = nn.Sequential(
                build_norm_layer(self.norm_cfg, self.channels)[1], nn.ReLU(inplace=True))
        self.branches = nn.ModuleList(
            [ConvModule(c_in, self.channels, 1, **conv)] +
            [ConvModule(c_in, self.channels, 3, padding=d, dilation=d, **conv)
             for d in self.dilations])
        fused = 2 * self.channels if official else self.channels
        self.fuse = ConvModule((len(self.dilations) + 2) * self.channels, fused, 1, **conv)
        if fused != self.channels:
            self.conv_seg = nn.Conv2d(fused, self.out_channels, kernel_size=1)

    def _context(self, x: torch.Tensor) -> torch.Tensor:
        x = self.context_reduce(x)
        if self.context_downsample > 1:
            z = _pooled(self.ocp, x, self.context_downsample, True, True)
        else:
            z = self.ocp(x)
        return z if self.context_post is None else self.context_post(z)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self._transform_inputs(inputs)
        if self.pre_reduce is not None:
            x = self.pre_reduce(x)
        outs = [self._context(x)] + [b(x) for b in self.branches]
        return self.cls_seg(self.fuse(torch.cat(outs, dim=1)))
