"""C4SelfAttentionNeck: self-attention on the C4 map of a C4 Faster R-CNN.

Paper: Lee, Kim, Jung, "Improving Object Detection Quality by Incorporating
Global Contexts via Self-Attention" §3.3 / Fig. 3: the self-attention module
on the C4 output, before the RPN of the C4 detector (mmdet's
``faster-rcnn_r50-caffe-c4``).
"""
from typing import Tuple

from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ._checks import check_levels, check_size

__all__ = ['C4SelfAttentionNeck']


@MODELS.register_module()
class C4SelfAttentionNeck(BaseModule):
    """Self-attention on the C4 map before the RPN (Lee et al. Fig. 3, §3.3).

    For mmdet's C4 Faster R-CNN (backbone ``out_indices=(2, )``): the RPN and
    the RoI head (whose shared head is C5) both see the attended C4.

    Args:
        in_channels: C4 channels (1024 for ResNet-50).
        attention_cfg: the block config (``in_channels`` filled in).
        min_size: smallest H and W of C4.
        init_cfg: mmengine init config.
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
        check_levels(type(self).__name__, inputs, 1)
        check_size(type(self).__name__, 'C4', inputs[0], self.min_size)
        return (self.attention(inputs[0]), )
