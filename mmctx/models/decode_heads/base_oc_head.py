"""Base-OC, the OCNet head of Fig. 5b.

Yuan et al., "OCNet: Object Context for Semantic Segmentation" (IJCV 2021,
arXiv:1809.00916), §3.4: 3x3 conv C_in -> 512, object context pooling (OCP,
SA or ISA with P_h = P_w = 8 by default, §4.3), concatenation of the OCP
output with its input, 1x1 conv 1024 -> 512. Every convolution is followed
by BN and ReLU (``norm_cfg``, SyncBN in the configs).

``variant='official'`` (the released code, see
:mod:`~mmctx.models.decode_heads.object_context_utils`): an ISA OCP is the
released ISA block; with ``downsample`` (Table 3's SA-2x) the OCP runs on the
map max-pooled (floor) by the factor and its output is upsampled with
``align_corners=True``, as the released SA block with ``scale=2``.
"""
from typing import List

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ..layers.checks import check_int
from .object_context_utils import build_ocp, check_variant, pooled_context

__all__ = ['BaseOCHead']


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
        owner = type(self).__name__
        self.downsample = check_int('downsample', downsample, owner=owner)
        self.variant = check_variant(variant, owner)
        self.reduce = ConvModule(self.in_channels, self.channels, 3, padding=1,
                                 conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                 act_cfg=self.act_cfg)
        self.ocp = build_ocp(self.channels, attention, self.norm_cfg, ocp_cfg, variant)
        self.fuse = ConvModule(2 * self.channels, self.channels, 1, conv_cfg=self.conv_cfg,
                               norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def _context(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample == 1:
            return self.ocp(x)
        return pooled_context(self.ocp, x, self.downsample, self.variant == 'official',
                              self.align_corners)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        x = self.reduce(self._transform_inputs(inputs))
        return self.cls_seg(self.fuse(torch.cat([x, self._context(x)], dim=1)))
