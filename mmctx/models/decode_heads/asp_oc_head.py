"""ASP-OC, the OCNet head of Fig. 5d.

Yuan et al., "OCNet: Object Context for Semantic Segmentation" (IJCV 2021,
arXiv:1809.00916), §3.4: ASPP with its image-pooling branch replaced by
3x3 conv -> 256 + object context pooling (OCP, SA or ISA); with the 1x1 and
the dilated 3x3 (12, 24, 36) branches, 1280 channels, 1x1 conv -> 256. Every
convolution is followed by BN and ReLU (``norm_cfg``, SyncBN in the configs).

``variant='official'`` (the released code, see
:mod:`~mmctx.models.decode_heads.object_context_utils`): a 3x3 conv
C_in -> 512 (conv-BN-ReLU) in front of all five branches (the release's
``context`` module); with SA the OCP runs on the 2x max-pooled map, is
upsampled back (``align_corners=True``) and followed by BN-ReLU (the released
``ASP_OC_Module``; its ISA counterpart has neither); an ISA OCP is the
released ISA block; the five 256-channel branches are fused to 512, not 256.
With ``norm_cfg=None`` every conv of the head, and the BN-ReLU after the
pooled SA, drop their norm and keep the activation, as ``ConvModule`` does.
"""
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ..layers.checks import check_int
from .object_context_utils import build_ocp, check_variant, pooled_context

__all__ = ['ASPOCHead']


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
        self.variant = check_variant(variant, owner)
        official = variant == 'official'
        conv = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        c_in = self.in_channels
        self.pre_reduce = None
        if official:
            c_in = check_int('pre_channels', pre_channels, allow_none=True,
                             owner=owner) or 2 * self.channels
            self.pre_reduce = ConvModule(self.in_channels, c_in, 3, padding=1, **conv)
        self.context_reduce = ConvModule(c_in, self.channels, 3, padding=1, **conv)
        self.ocp = build_ocp(self.channels, attention, self.norm_cfg, ocp_cfg, variant)
        self.context_downsample = 2 if official and attention == 'sa' else 1
        self.context_post = None
        if official and attention == 'sa':
            # BN-ReLU as released; norm_cfg=None keeps the ReLU (as ConvModule)
            norm = [] if self.norm_cfg is None else [
                build_norm_layer(self.norm_cfg, self.channels)[1]]
            self.context_post = nn.Sequential(*norm, nn.ReLU(inplace=True))
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
            z = pooled_context(self.ocp, x, self.context_downsample, True, True)
        else:
            z = self.ocp(x)
        return z if self.context_post is None else self.context_post(z)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self._transform_inputs(inputs)
        if self.pre_reduce is not None:
            x = self.pre_reduce(x)
        outs = [self._context(x)] + [b(x) for b in self.branches]
        return self.cls_seg(self.fuse(torch.cat(outs, dim=1)))
