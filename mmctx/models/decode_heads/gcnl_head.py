"""FCN + GCNL (Woo et al. (GCNL) Table 1, "FCN + Ours"; §3.2 "Two instantiations").

The FCN-based instantiation appends the GCNL block (Woo et al. (GCNL) Eqs. 1-9,
:class:`~mmctx.models.layers.GCNLBlock`) to the FCN head: conv 3x3 -> GCNL ->
conv 3x3 -> (concat input, conv) -> classifier, the layout mmseg's ``NLHead`` /
``GCHead`` use for their blocks, so the Table 1 rows differ only in the block.
"""
from mmseg.registry import MODELS

from .context_block_head import ContextBlockHead

__all__ = ['GCNLHead']


@MODELS.register_module()
class GCNLHead(ContextBlockHead):
    """:class:`ContextBlockHead` with a ``GCNLBlock``.

    Args:
        num_heads: GCNL heads (8 in Woo et al. (GCNL)).
        reduction: GCNL embedding reduction C^ = C / reduction.
        attn_drop: dropout on the relation matrix.
        block_cfg: further GCNLBlock arguments (use_context, use_rel_pos, ...).
        **kwargs: :class:`FCNHead` arguments (``num_convs`` is fixed to 2).
    """

    def __init__(self, num_heads: int = 8, reduction: int = 2, attn_drop: float = 0.1,
                 block_cfg: dict = None, **kwargs) -> None:
        cfg = dict(type='GCNLBlock', num_heads=num_heads, reduction=reduction,
                   attn_drop=attn_drop)
        cfg.update(block_cfg or {})
        super().__init__(context_cfg=cfg, **kwargs)
