"""EBFPN: balanced feature pyramid refined by the GCNL block: Woo et al.,
"Global Context and Geometric Priors for Effective Non-Local Self-Attention"
§3.2.

"Two instantiations", FPN-based: the FPN features are resized to one
intermediate level and averaged into the balanced semantic feature
C = 1/L sum_l C_l, which the GCNL block (Eqs. 1-9) refines; the
refined feature is redistributed to every level by residual summation.
This is mmdet's :class:`~mmdet.models.necks.BFP` (Libra R-CNN, the paper's
'BFPN' row, which refines with an embedded-Gaussian non-local block) with the
refine step built from a config: ``refine_cfg=dict(type='GCNLBlock', ...)``.
"""
from typing import Tuple

from mmdet.models.necks import BFP
from mmdet.registry import MODELS
from torch import Tensor

__all__ = ['EBFPN']


@MODELS.register_module()
class EBFPN(BFP):
    """Balanced feature pyramid with a configurable context block as refiner.

    Args:
        in_channels: channels of every input level.
        num_levels: number of input levels (e.g. 5 for P2-P6).
        refine_level: index of the level the features are gathered to
            (2 = P4 of P2-P6, as Libra R-CNN and the GCNL paper's FLOPs imply).
        refine_cfg: the refining block, built with ``in_channels``; default
            the GCNL block of the paper (C^ = C, 8 heads, keys and values
            sub-sampled by 2 with the input pooled before W_k / W_v, the
            order the paper's FLOPs imply: see :mod:`mmctx.models.layers.gcnl`).
        init_cfg: as mmdet's BFP: Xavier on every conv, the refiner's
            included; then mmengine calls the refiner's own ``init_weights``
            (``GCNLBlock``: W_o back to zero, the identity start).
    """

    def __init__(self,
                 in_channels: int,
                 num_levels: int,
                 refine_level: int = 2,
                 refine_cfg: dict = dict(
                     type='GCNLBlock', reduction=1, num_heads=8, sub_sample=True,
                     pool_order='before'),
                 init_cfg=dict(type='Xavier', layer='Conv2d', distribution='uniform')):
        if not 0 <= refine_level < num_levels:
            raise ValueError(f'refine_level={refine_level} must index one of the '
                             f'num_levels={num_levels} input levels')
        super().__init__(in_channels, num_levels, refine_level, refine_type=None,
                         init_cfg=init_cfg)
        self.refine_type = refine_cfg['type']
        self.refine = MODELS.build(dict(refine_cfg, in_channels=in_channels))

    def forward(self, inputs: Tuple[Tensor]) -> Tuple[Tensor]:
        if len(inputs) != self.num_levels:
            raise ValueError(f'{type(self).__name__} expects num_levels='
                             f'{self.num_levels} input levels, got {len(inputs)}')
        for i, feat in enumerate(inputs):
            if feat.shape[1] != self.in_channels:
                raise ValueError(f'{type(self).__name__}: level {i} has '
                                 f'{feat.shape[1]} channels, expected {self.in_channels}')
        return super().forward(inputs)
