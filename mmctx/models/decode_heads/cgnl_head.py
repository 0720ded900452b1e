"""FCN + Compact Generalized Non-local (Yue et al., "Compact Generalized Non-local
Network"), a comparison head of Yuan et al. (OCNet).

The block is :class:`~mmctx.models.layers.CompactGeneralizedNonLocal2d` (Yue et al.
Eqs. 5-7); the head layout is mmseg's NLHead: conv 3x3 -> block -> conv 3x3 ->
(concat input) -> classifier.
"""
from mmseg.registry import MODELS

from .context_block_head import ContextBlockHead

__all__ = ['CGNLHead']


@MODELS.register_module()
class CGNLHead(ContextBlockHead):
    """:class:`ContextBlockHead` with a ``CompactGeneralizedNonLocal2d``.

    Args:
        groups / kernel / use_scale / order / gamma / planes: CGNL block arguments.
        **kwargs: :class:`FCNHead` arguments (``num_convs`` fixed to 2).
    """

    def __init__(self, groups: int = 8, kernel: str = 'dot', use_scale: bool = False,
                 order: int = 3, gamma: float = 1e-4, planes: int = None, **kwargs) -> None:
        super().__init__(context_cfg=dict(
            type='CompactGeneralizedNonLocal2d', planes=planes, groups=groups,
            kernel=kernel, use_scale=use_scale, order=order, gamma=gamma), **kwargs)
