"""FPN with context blocks on the top-down path (seed 003 §4, seed 002 §3.3).

* :class:`ENLFPN` — seed 003 §4 "Non Local Block": an ENL block
  (:class:`~mmctx.models.layers.EfficientNonLocal2d`) is applied at the res5,
  res4 and res3 levels of the top-down (TD) stream just before each
  upsampling ("+3NL, TD", Tables 2-5). ``block_cfg`` switches the Table 4
  variants: ``dict(type='conv5')`` (+3conv5: a 5x5 conv at the same places),
  the plain NL (``mode='explicit', similarity='exp'``), the efficient NL and
  the efficient NL with DCT position (``pos_enc='dct'``).
* :class:`SAFPN` — seed 002 §3.3 / Fig. 4: the bottleneck self-attention
  module between C5 and P5, so global context flows down the TD path.
* :class:`C4SelfAttentionNeck` — seed 002 Fig. 3: self-attention on the C4
  output, before the RPN of the C4 Faster R-CNN (mmdet's ``faster-rcnn_r50-caffe-c4``).
"""
from typing import Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

__all__ = ['ENLFPN', 'SAFPN', 'C4SelfAttentionNeck']


def _check_levels(neck: str, inputs, expected: int) -> None:
    if len(inputs) != expected:
        raise ValueError(f'{neck} expects {expected} input levels '
                         f'(in_channels has {expected} entries), got '
                         f'{len(inputs)}')


def _check_size(neck: str, level: str, x: Tensor, min_size: int) -> None:
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        raise ValueError(f'{neck}: feature map of {level} is {h}x{w}, smaller '
                         f'than the {min_size}x{min_size} its block needs; use '
                         f'larger images')


@MODELS.register_module()
class ENLFPN(FPN):
    """FPN with a context block on each TD level before its upsampling.

    Args:
        block_cfg: the block (built with ``in_channels=out_channels``);
            ``dict(type='conv5')`` gives the +3conv5 control of Table 4.
            Default: efficient NL, softmax-normalised φ, N(0, 0.01) init,
            no BN (seed 003 §4).
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
        _check_levels(type(self).__name__, inputs, len(self.in_channels))
        laterals = [
            conv(inputs[i + self.start_level])
            for i, conv in enumerate(self.lateral_convs)
        ]
        for i in range(len(laterals) - 1, 0, -1):  # the top-down stream
            if str(i) in self.td_blocks:
                _check_size(type(self).__name__,
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


@MODELS.register_module()
class SAFPN(FPN):
    """FPN with bottleneck self-attention between C5 and P5 (seed 002 Fig. 4).

    Args:
        attention_cfg: the block, built with ``in_channels`` of the top
            input level (C5: 2048 for ResNet-50); default 1 layer, 8 heads,
            C/4 channels (seed 002 §3.4).
        min_size: smallest H and W of C5.
        **kwargs: :class:`mmdet.models.necks.FPN` arguments.
    """

    def __init__(self, *args,
                 attention_cfg: dict = dict(type='BottleneckSelfAttention',
                                            reduction=4, num_heads=8,
                                            num_layers=1),
                 min_size: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_size = min_size
        self.attention = MODELS.build(
            dict(attention_cfg, in_channels=self.in_channels[-1]))

    def forward(self, inputs: Tuple[Tensor]) -> tuple:
        _check_levels(type(self).__name__, inputs, len(self.in_channels))
        _check_size(type(self).__name__, 'C5 (the top input level)',
                    inputs[-1], self.min_size)
        inputs = tuple(inputs[:-1]) + (self.attention(inputs[-1]), )
        return super().forward(inputs)


@MODELS.register_module()
class C4SelfAttentionNeck(BaseModule):
    """Self-attention on the C4 map before the RPN (seed 002 Fig. 3, §3.3).

    For mmdet's C4 Faster R-CNN (backbone ``out_indices=(2, )``): the RPN and
    the RoI head (whose shared head is C5) both see the attended C4.

    Args:
        in_channels: C4 channels (1024 for ResNet-50).
        attention_cfg: the block config (``in_channels`` filled in).
    """

    def __init__(self, in_channels: int = 1024,
                 attention_cfg: dict = dict(type='BottleneckSelfAttention',
                                            reduction=4, num_heads=8,
                                            num_layers=1),
                 min_size: int = 2, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.min_size = min_size
        self.attention = MODELS.build(dict(attention_cfg,
                                           in_channels=in_channels))

    def forward(self, inputs: Tuple[Tensor]) -> tuple:
        _check_levels(type(self).__name__, inputs, 1)
        _check_size(type(self).__name__, 'C4', inputs[0], self.min_size)
        return (self.attention(inputs[0]), )
