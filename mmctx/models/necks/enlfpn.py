"""ENLFPN: FPN with efficient non-local blocks on the top-down path.

Paper: Levi & Ullman, "Efficient Coarse-to-Fine Non-Local Module for the
Detection of Small Objects" §4 "Non Local Block": an ENL block
(:class:`~mmctx.models.layers.EfficientNonLocal2d`) is applied at the res5,
res4 and res3 levels of the top-down (TD) stream just before each
upsampling ("+3NL, TD", Tables 2-5). ``block_cfg`` switches the Table 4
variants: ``dict(type='conv5')`` (+3conv5: a 5x5 conv at the same places),
the plain NL (``mode='explicit', similarity='exp'``), the efficient NL and
the efficient NL with DCT position (``pos_enc='dct'``).
"""
from typing import Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from torch import Tensor

from ._checks import check_levels, check_size

__all__ = ['ENLFPN']


@MODELS.register_module()
class ENLFPN(FPN):
    """FPN with a context block on each TD level before its upsampling.

    Args:
        block_cfg: the block (built with ``in_channels=out_channels``);
            ``dict(type='conv5')`` gives the +3conv5 control of Table 4.
            Default: efficient NL, softmax-normalised φ, N(0, 0.01) init,
            no BN (§4).
        block_levels: indices (into the used input levels) whose lateral map
            is refined before being upsampled; (3, 2, 1) = res5, res4, res3
            for C2..C5 inputs.
        min_size: smallest H and W a refined level may have.
        **kwargs: :class:`mmdet.models.necks.FPN` arguments.
    """

    def __init__(self,
                 *args,
                 block_cfg: dict = dict(type='EfficientNonLocal2d',
                                        reduction=2, mode='efficient',
                                        init_std=0.01),
                 block_levels: Sequence[int] = (3, 2, 1),
                 min_size: int = 2,
                 **kwargs):
        super().__init__(*args, **kwargs)
        num_used = self.backbone_end_level - self.start_level
        for lvl in block_levels:
            if not 0 < lvl < num_used:
                raise ValueError(f'block_levels entry {lvl} must be a TD level '
                                 f'that is upsampled, i.e. in 1..{num_used - 1}')
        self.block_levels = tuple(block_levels)
        self.min_size = min_size
        self.td_blocks = nn.ModuleDict(
            {str(lvl): self._build_block(block_cfg) for lvl in block_levels})

    def _build_block(self, block_cfg: dict) -> nn.Module:
        cfg = dict(block_cfg)
        if cfg.pop('type') == 'conv5':
            conv = nn.Conv2d(self.out_channels, self.out_channels, 5, padding=2)
            nn.init.normal_(conv.weight, 0, cfg.get('init_std', 0.01))
            nn.init.zeros_(conv.bias)
            return conv
        return MODELS.build(dict(block_cfg, in_channels=self.out_channels))

    def forward(self, inputs: Tuple[Tensor]) -> tuple:
        check_levels(type(self).__name__, inputs, len(self.in_channels))
        laterals = [
            conv(inputs[i + self.start_level])
            for i, conv in enumerate(self.lateral_convs)
        ]
        for i in range(len(laterals) - 1, 0, -1):  # the top-down stream
            if str(i) in self.td_blocks:
                check_size(type(self).__name__,
                           f'level {i + self.start_level}', laterals[i],
                           self.min_size)
                laterals[i] = self.td_blocks[str(i)](laterals[i])
            prev_shape = laterals[i - 1].shape[2:]
            laterals[i - 1] = laterals[i - 1] + F.interpolate(
                laterals[i], size=prev_shape, **self.upsample_cfg)
        return self._outputs(inputs, laterals)

    def _outputs(self, inputs, laterals) -> tuple:
        """FPN output convs and extra levels, as in mmdet's FPN."""
        outs = [self.fpn_convs[i](laterals[i]) for i in range(len(laterals))]
        n = len(laterals)
        if self.num_outs > n:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - n):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == 'on_input':
                    src = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == 'on_lateral':
                    src = laterals[-1]
                else:  # 'on_output'
                    src = outs[-1]
                outs.append(self.fpn_convs[n](src))
                for i in range(n + 1, self.num_outs):
                    x = outs[-1]
                    if self.relu_before_extra_convs:
                        x = F.relu(x)
                    outs.append(self.fpn_convs[i](x))
        return tuple(outs)
