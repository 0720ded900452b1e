"""FCN + GloRe unit (Chen et al., "Graph-Based Global Reasoning Networks"), a
comparison head of Woo et al. (GCNL) Table 1.

The block is :class:`~mmctx.models.layers.GloReUnit` (Chen et al. Eqs. 1-4); the
head layout is mmseg's NLHead: conv 3x3 -> GloRe -> conv 3x3 -> (concat) -> classifier.
"""
from mmseg.registry import MODELS

from .context_block_head import ContextBlockHead

__all__ = ['GloReHead']


@MODELS.register_module()
class GloReHead(ContextBlockHead):
    """:class:`ContextBlockHead` with a ``GloReUnit``, normalised with the head's ``norm_cfg``
    (``norm_cfg=None``: the unit has no norm after its extending conv).

    Args:
        state_channels: C' of the unit (default ``channels // 2``).
        num_nodes: N of the unit (default ``C' // 4``).
        **kwargs: :class:`FCNHead` arguments (``num_convs`` fixed to 2).
    """

    def __init__(self, state_channels: int = None, num_nodes: int = None, **kwargs) -> None:
        super().__init__(context_cfg=dict(type='GloReUnit', state_channels=state_channels,
                                          num_nodes=num_nodes), **kwargs)

    def _block_cfg(self, cfg: dict) -> dict:
        cfg = super()._block_cfg(cfg)
        cfg['norm_cfg'] = self.norm_cfg
        return cfg
