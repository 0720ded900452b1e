"""FCN + Efficient Attention (Shen et al., "Efficient Attention: Attention with Linear
Complexities"), a comparison head of Yuan et al. (OCNet) Tables 3-4.

The block is :class:`~mmctx.models.layers.EfficientAttention2d` (Shen et al. Eq. 3);
the head layout follows mmseg's NLHead: conv 3x3 -> block -> conv 3x3 ->
(concat input, conv) -> classifier.
"""
from mmseg.registry import MODELS

from .context_block_head import ContextBlockHead

__all__ = ['EfficientAttentionHead']


@MODELS.register_module()
class EfficientAttentionHead(ContextBlockHead):
    """:class:`ContextBlockHead` with an ``EfficientAttention2d``.

    Args:
        num_heads: attention heads.
        key_channels / value_channels: default ``channels // 2``.
        **kwargs: :class:`FCNHead` arguments (``num_convs`` fixed to 2).
    """

    def __init__(self, num_heads: int = 8, key_channels: int = None,
                 value_channels: int = None, **kwargs) -> None:
        super().__init__(context_cfg=dict(
            type='EfficientAttention2d', key_channels=key_channels,
            value_channels=value_channels, num_heads=num_heads), **kwargs)
