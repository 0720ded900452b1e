"""Object context pooling: self-attention (SA) and interlaced sparse SA (ISA).

Seed 004 (OCNet), §3.2:

* :class:`SelfAttention2d` is the dense relation scheme, Eqs. 10-11:
  ``W = softmax(theta(X) phi(X)^T / sqrt(d))``, ``Z = rho(W delta(X))``, with
  theta, phi two consecutive 1x1 conv-BN-ReLU, delta and rho 1x1 convs,
  theta/phi/delta halving the channels (d = C/2) and rho restoring them.
* :class:`InterlacedSparseSelfAttention` is the sparse relation scheme,
  Eqs. 12-21 and Algorithm 1: ``W = W^l P^T W^g P`` (Eq. 9) computed as
  ``W^l(P^T(W^g(P X)))``: a global relation among positions sharing the same
  offset inside the (P_h x P_w)-periodic grid, then a local relation inside
  each contiguous P_h x P_w block, each a :class:`SelfAttention2d` of its own.
  A map whose H (W) is not divisible by P_h (P_w) is zero-padded at the
  bottom (right) to the next multiple, and the output cropped back: padded
  positions take part in the attention as keys with zero input features.
* :class:`ObjectContextPooling` (OCP) wraps either one.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from .attention import attention_matrix, check_impl, softmax_attention

__all__ = ['SelfAttention2d', 'InterlacedSparseSelfAttention', 'ObjectContextPooling',
           'ResidualObjectContext']


@MODELS.register_module()
class SelfAttention2d(nn.Module):
    """Dense self-attention of seed 004 Eqs. 10-11 (returns the context map Z).

    Args:
        in_channels: C of the input.
        key_channels: channels of theta/phi, d in Eq. 10 (default C/2).
        value_channels: channels of delta (default C/2).
        out_channels: channels of rho, i.e. of Z (default C).
        norm_cfg: norm of the theta/phi conv-BN-ReLU (SyncBN in configs).
        impl: 'fused' (SDPA) or 'explicit' (formed matrix).
    """
    _abbr_ = 'sa'

    def __init__(self,
                 in_channels: int,
                 key_channels: Optional[int] = None,
                 value_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='BN'),
                 impl: str = 'fused') -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f'in_channels must be >= 1, got {in_channels}')
        self.key_channels = key_channels or max(in_channels // 2, 1)
        self.value_channels = value_channels or max(in_channels // 2, 1)
        self.out_channels = out_channels or in_channels
        self.impl = check_impl(impl)

        def embed():
            return nn.Sequential(
                ConvModule(in_channels, self.key_channels, 1, norm_cfg=norm_cfg),
                ConvModule(self.key_channels, self.key_channels, 1, norm_cfg=norm_cfg))

        self.query = embed()  # theta
        self.key = embed()  # phi
        self.value = nn.Conv2d(in_channels, self.value_channels, 1)  # delta
        self.out = nn.Conv2d(self.value_channels, self.out_channels, 1)  # rho

    def _qkv(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        q = self.query(x).flatten(2).transpose(1, 2)[:, None]  # (B, 1, N, d)
        k = self.key(x).flatten(2).transpose(1, 2)[:, None]
        v = self.value(x).flatten(2).transpose(1, 2)[:, None]
        return q, k, v

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """W of Eq. 10, (B, 1, HW, HW)."""
        q, k, _ = self._qkv(x)
        return attention_matrix(q, k, self.key_channels**-0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q, k, v = self._qkv(x)
        y = softmax_attention(q, k, v, self.key_channels**-0.5, impl=self.impl)
        y = y[:, 0].transpose(1, 2).reshape(b, self.value_channels, h, w)
        return self.out(y)


def _global_groups(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*ph*pw, C, H/ph, W/pw): positions of equal offset (Eq. 12-13)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // ph, ph, w // pw, pw).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(b * ph * pw, c, h // ph, w // pw)


def _from_global_groups(x: torch.Tensor, b: int, ph: int, pw: int) -> torch.Tensor:
    """Inverse of :func:`_global_groups`."""
    _, c, qh, qw = x.shape
    x = x.reshape(b, ph, pw, c, qh, qw).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, c, qh * ph, qw * pw)


def _local_groups(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*(H/ph)*(W/pw), C, ph, pw): contiguous blocks (Eq. 18-19)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // ph, ph, w // pw, pw).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b * (h // ph) * (w // pw), c, ph, pw)


def _from_local_groups(x: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_local_groups`."""
    _, c, ph, pw = x.shape
    x = x.reshape(b, h // ph, w // pw, c, ph, pw).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, h, w)


@MODELS.register_module()
class InterlacedSparseSelfAttention(nn.Module):
    """Interlaced sparse self-attention, seed 004 Eqs. 12-21 and Algorithm 1.

    Args:
        in_channels: C of the input.
        groups: (P_h, P_w), the numbers of groups along H and W; local blocks
            are P_h x P_w, global groups gather every P_h-th row and P_w-th
            column (Algorithm 1). Default (8, 8), seed 004's choice.
        order: 'global_local' (the paper's) or 'local_global' (Table 1).
        out_channels: channels of Z (default C).
        impl: 'fused' (SDPA) or 'explicit', for both relation stages.
        **sa_kwargs: key_channels, value_channels, norm_cfg of the two
            :class:`SelfAttention2d`.
    """
    _abbr_ = 'isa'

    def __init__(self,
                 in_channels: int,
                 groups: Tuple[int, int] = (8, 8),
                 order: str = 'global_local',
                 out_channels: Optional[int] = None,
                 impl: str = 'fused',
                 **sa_kwargs) -> None:
        super().__init__()
        groups = tuple(groups)
        if len(groups) != 2 or min(groups) < 1:
            raise ValueError(f'groups must be two positive ints (P_h, P_w), got {groups}')
        if order not in ('global_local', 'local_global'):
            raise ValueError(
                f"order must be 'global_local' or 'local_global', got {order!r}")
        self.groups = groups
        self.order = order
        out_channels = out_channels or in_channels
        self.global_relation = SelfAttention2d(in_channels, out_channels=out_channels,
                                               impl=impl, **sa_kwargs)
        self.local_relation = SelfAttention2d(out_channels, out_channels=out_channels,
                                              impl=impl, **sa_kwargs)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        ph, pw = self.groups
        h, w = x.shape[-2:]
        return F.pad(x, (0, (-w) % pw, 0, (-h) % ph))

    def _stage(self, x: torch.Tensor, which: str) -> torch.Tensor:
        b, _, h, w = x.shape
        ph, pw = self.groups
        if which == 'global':
            return _from_global_groups(self.global_relation(_global_groups(x, ph, pw)),
                                       b, ph, pw)
        return _from_local_groups(self.local_relation(_local_groups(x, ph, pw)), b, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self._pad(x)
        for which in self.order.split('_'):
            y = self._stage(y, which)
        return y[..., :h, :w]

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """The dense composite relation W^l P^T W^g P of Eq. 9, (B, 1, HW, HW).

        Formed explicitly, for analysis only; for the padded case rows and
        columns of padded positions are dropped after composition.
        """
        h, w = x.shape[-2:]
        xp = self._pad(x)
        b, _, hp, wp = xp.shape
        n = hp * wp
        index = torch.arange(n, device=x.device, dtype=torch.long).reshape(1, 1, hp, wp)
        first, second = self.order.split('_')
        mats = {}
        for which, src in ((first, xp), (second, None)):
            if src is None:  # second stage sees the first stage's output
                src = self._stage(xp, first)
            mats[which] = self._block_matrix(src, index, which)
        dense = mats[second] @ mats[first]
        keep = index[0, 0, :h, :w].flatten()
        return dense[:, keep][:, :, keep][:, None]

    def _block_matrix(self, x, index, which):
        """The (B, N, N) sparse relation W^g or W^l in original position order."""
        b = x.shape[0]
        ph, pw = self.groups
        n = index.numel()
        sa = self.global_relation if which == 'global' else self.local_relation
        split = _global_groups if which == 'global' else _local_groups
        groups = split(x, ph, pw)
        ids = split(index.expand(b, 1, -1, -1), ph, pw).flatten(1)  # (B*G, Q)
        att = sa.get_attention(groups)[:, 0]  # (B*G, Q, Q)
        g = att.shape[0] // b
        full = att.new_zeros(b, n, n)
        rows = ids.reshape(b, g, -1, 1).expand(-1, -1, -1, ids.shape[1])
        cols = ids.reshape(b, g, 1, -1).expand(-1, -1, ids.shape[1], -1)
        bidx = torch.arange(b, device=x.device).reshape(b, 1, 1, 1).expand_as(rows)
        full[bidx, rows, cols] = att.reshape(b, g, ids.shape[1], ids.shape[1])
        return full


@MODELS.register_module()
class ObjectContextPooling(nn.Module):
    """OCP of seed 004 §3.2: the object context of every pixel by SA or ISA.

    Args:
        in_channels: C of the input.
        attention: 'sa' (dense relation) or 'isa' (interlaced sparse).
        **attention_kwargs: passed to :class:`SelfAttention2d` or
            :class:`InterlacedSparseSelfAttention`.
    """
    _abbr_ = 'ocp'

    def __init__(self, in_channels: int, attention: str = 'isa', **attention_kwargs) -> None:
        super().__init__()
        if attention == 'sa':
            self.attention = SelfAttention2d(in_channels, **attention_kwargs)
        elif attention == 'isa':
            self.attention = InterlacedSparseSelfAttention(in_channels, **attention_kwargs)
        else:
            raise ValueError(f"attention must be 'sa' or 'isa', got {attention!r}")

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention.get_attention(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x)


@MODELS.register_module()
class ResidualObjectContext(ObjectContextPooling):
    """``X + OCP(X)``: object context pooling (SA or ISA) as a residual plugin.

    :class:`ObjectContextPooling` returns the object context Z (seed 004
    Eq. 11); OCNet's heads concatenate it with X. Inside a backbone (seed 004 §4.5, Table 12: "object context pooling module based on
    interlaced sparse self-attention before the last block of res-4", "similar
    to" Wang et al.'s non-local block) the module must keep the features, so
    this block returns ``X + Z`` like a non-local block
    (seed 001 Eq. 1, ``z = x + W_z y``), with the last projection rho zero-
    initialised so the pretrained backbone is unchanged at the start.

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
