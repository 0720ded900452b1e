"""SAFPN: FPN with bottleneck self-attention between C5 and P5.

Paper: Lee, Kim, Jung, "Improving Object Detection Quality by Incorporating
Global Contexts via Self-Attention" §3.3 / Fig. 4: the bottleneck
self-attention module sits between C5 and P5, so global context flows down
the top-down path of the FPN.
"""
from typing import Tuple

from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from torch import Tensor

from ._checks import check_levels, check_size

__all__ = ['SAFPN']


@MODELS.register_module()
class SAFPN(FPN):
    """FPN with bottleneck self-attention between C5 and P5 (Lee et al. Fig. 4).

    Args:
        attention_cfg: the block, built with ``in_channels`` of the top
            input level (C5: 2048 for ResNet-50); default 1 layer, 8 heads,
            C/4 channels (Lee et al. §3.4).
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
        check_levels(type(self).__name__, inputs, len(self.in_channels))
        check_size(type(self).__name__, 'C5 (the top input level)',
                   inputs[-1], self.min_size)
        inputs = tuple(inputs[:-1]) + (self.attention(inputs[-1]), )
        return super().forward(inputs)
