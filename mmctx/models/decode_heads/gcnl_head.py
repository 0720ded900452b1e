"""FCN + GCNL (Woo et al. (GCNL) Table 1, "FCN + Ours"; §3.2 "Two instantiations").

The FCN-based instantiation appends the GCNL block (Woo et al. (GCNL) Eqs. 1-9) to the
FCN head: conv 3x3 -> GCNL -> conv 3x3 -> (concat input, conv) -> classifier,
the layout mmseg's ``NLHead`` / ``GCHead`` use for their blocks, so the
Table 1 rows differ only in the block.
"""
import torch
from mmengine.registry import MODELS as ROOT_MODELS
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

__all__ = ['GCNLHead']


@MODELS.register_module()
class GCNLHead(FCNHead):
    """FCN head with a :class:`~mmctx.models.layers.GCNLBlock` between its two convs.

    Args:
        num_heads: GCNL heads (8 in Woo et al. (GCNL)).
        reduction: GCNL embedding reduction C^ = C / reduction.
        attn_drop: dropout on the relation matrix.
        block_cfg: further GCNLBlock arguments (use_context, use_rel_pos, ...).
        **kwargs: :class:`FCNHead` arguments (``num_convs`` is fixed to 2).
    """

    def __init__(self, num_heads: int = 8, reduction: int = 2, attn_drop: float = 0.1,
                 block_cfg: dict = None, **kwargs) -> None:
        super().__init__(num_convs=2, **kwargs)
        cfg = dict(type='GCNLBlock', in_channels=self.channels, num_heads=num_heads,
                   reduction=reduction, attn_drop=attn_drop)
        cfg.update(block_cfg or {})
        self.gcnl_block = ROOT_MODELS.build(cfg)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        output = self.convs[1](self.gcnl_block(self.convs[0](x)))
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
