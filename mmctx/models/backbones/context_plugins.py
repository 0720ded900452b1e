"""Backbone-plugin forms of context modules that return a context map only.

:class:`~mmctx.models.layers.ObjectContextPooling` returns the object
context Z (seed 004 Eq. 11); OCNet's heads concatenate it with X. Inside a
backbone (seed 004 §4.5, Table 12: "object context pooling module based on
interlaced sparse self-attention before the last block of res-4", "similar
to" Wang et al.'s non-local block) the module must keep the features, so
:class:`ResidualObjectContext` returns ``X + Z`` like a non-local block
(seed 001 Eq. 1, ``z = x + W_z y``), with the last projection rho zero-
initialised so the pretrained backbone is unchanged at the start.
"""
import torch
import torch.nn as nn
from mmengine.registry import MODELS

from ..layers.object_context import (InterlacedSparseSelfAttention, ObjectContextPooling,
                                     SelfAttention2d)

__all__ = ['ResidualObjectContext']


@MODELS.register_module()
class ResidualObjectContext(ObjectContextPooling):
    """``X + OCP(X)``: object context pooling (SA or ISA) as a residual plugin.

    Args:
        in_channels: C of X (and of Z).
        attention: ``'isa'`` (seed 004 Table 12 "+ISA") or ``'sa'``.
        zero_init: zero the weight and bias of rho of the relation applied
            last (the local relation for ISA's ``'global_local'`` order), so
            the block starts as the identity while every other projection
            still receives gradients (zeroing both ISA stages' rho would
            give the first stage none).
        **attention_kwargs: as :class:`ObjectContextPooling` (``groups``,
            ``order``, ``key_channels``, ``value_channels``, ``norm_cfg``,
            ``impl``); ``out_channels`` must stay C.
    """
    _abbr_ = 'ocp'

    def __init__(self, in_channels: int, attention: str = 'isa', zero_init: bool = True,
                 **attention_kwargs) -> None:
        out_channels = attention_kwargs.get('out_channels')
        if out_channels not in (None, in_channels):
            raise ValueError(f'ResidualObjectContext adds Z to X: out_channels='
                             f'{out_channels} must equal in_channels={in_channels}')
        super().__init__(in_channels, attention=attention, **attention_kwargs)
        self.zero_init = zero_init
        self.init_weights()

    def last_projection(self) -> nn.Conv2d:
        """rho of the relation stage whose output is Z."""
        att = self.attention
        if isinstance(att, SelfAttention2d):
            return att.out
        assert isinstance(att, InterlacedSparseSelfAttention)
        last = att.order.split('_')[-1]
        return (att.local_relation if last == 'local' else att.global_relation).out

    def init_weights(self) -> None:
        """Zero rho (re-applied after a parent's init, e.g. ResNet's Kaiming)."""
        if self.zero_init:
            rho = self.last_projection()
            nn.init.zeros_(rho.weight)
            nn.init.zeros_(rho.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)
