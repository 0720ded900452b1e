"""Attentional Class Feature head (Zhang et al., "ACFNet: Attentional Class Feature
Network for Semantic Segmentation"), a comparison head of Woo et al. (GCNL) Table 1
("ACFModule").

FCN conv 3x3 -> ACF module (:class:`~mmctx.models.layers.AttentionalClassFeature`:
coarse classifier, class centers, attentional class feature, fuse; ACFNet Eqs. 1-2)
-> conv 3x3 -> (concat input) -> classifier. The coarse prediction is supervised by
its own loss (``coarse_loss_weight``), as ACFNet trains its coarse segmentation.
"""
from mmseg.registry import MODELS

from .context_block_head import ContextBlockHead

__all__ = ['ACFHead']


@MODELS.register_module()
class ACFHead(ContextBlockHead):
    """:class:`ContextBlockHead` with an ``AttentionalClassFeature`` module.

    The module's coarse classifier has the head's ``out_channels``; its fusing conv uses
    the head's ``conv_cfg`` / ``norm_cfg`` / ``act_cfg``.

    Args:
        coarse_loss_weight: weight of the coarse segmentation's cross-entropy.
        **kwargs: :class:`FCNHead` arguments (``num_convs`` fixed to 2).
    """

    def __init__(self, coarse_loss_weight: float = 0.4, **kwargs) -> None:
        super().__init__(context_cfg=dict(type='AttentionalClassFeature'), **kwargs)
        self.coarse_loss_weight = coarse_loss_weight

    def _block_cfg(self, cfg: dict) -> dict:
        cfg = super()._block_cfg(cfg)
        cfg.update(num_classes=self.out_channels, conv_cfg=self.conv_cfg,
                   norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        return cfg

    def _forward(self, inputs):
        """(coarse logits, logits)."""
        x = self._transform_inputs(inputs)
        context, coarse = self.context_block.forward_with_coarse(self.convs[0](x))
        return coarse, self._classify(x, self.convs[1](context))

    def loss(self, inputs, batch_data_samples, train_cfg):
        coarse, logits = self._forward(inputs)
        losses = self.loss_by_feat(logits, batch_data_samples)
        for name, value in self.loss_by_feat(coarse, batch_data_samples).items():
            losses[f'coarse.{name}'] = (value * self.coarse_loss_weight
                                        if name.startswith('loss') else value)
        return losses
