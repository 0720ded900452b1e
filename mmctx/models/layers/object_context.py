"""Object context pooling: self-attention (SA) and interlaced sparse SA (ISA).

Yuan, Huang, Guo, Zhang, Chen, Wang, "OCNet: Object Context for Semantic
Segmentation" (IJCV 2021, arXiv:1809.00916), §3.2:

* :class:`SelfAttention2d` is the dense relation scheme, Eqs. 10-11:
  ``W = softmax(theta(X) phi(X)^T / sqrt(d))``, ``Z = rho(W delta(X))``, with
  theta, phi two consecutive 1x1 conv-BN-ReLU, delta and rho 1x1 convs,
  theta/phi/delta halving the channels (d = C/2) and rho restoring them.
* :class:`InterlacedSparseSelfAttention` is the sparse relation scheme,
  Eqs. 12-21 and Algorithm 1: ``W = W^l P^T W^g P`` (Eq. 9) computed as
  ``W^l(P^T(W^g(P X)))``: a global relation among positions sharing the same
  offset inside the (P_h x P_w)-periodic grid, then a local relation inside
  each contiguous P_h x P_w block, each a :class:`SelfAttention2d` of its own.
  A map whose H (W) is not divisible by P_h (P_w) is zero-padded to the next
  multiple, and the output cropped back: padded positions take part in the
  attention as keys with zero input features.
* :class:`ObjectContextPooling` (OCP) wraps either one.

Two formulations of ISA (``variant``):

* ``'paper'``: §3.2 as written: rho a plain 1x1 conv, delta C -> C/2, padding
  at the bottom / right (Algorithm 1 leaves padding open).
* ``'official'``: the ISA block of the authors' released code (the
  openseg.pytorch ``isa_block``, which mmseg's ``ISAHead`` also follows),
  which produced the paper's ISA numbers: rho is 1x1 conv -> BN -> ReLU
  (no conv bias), delta keeps C channels (no bias), theta/phi use d = C/2 as
  in the paper, and padding is symmetric (``pad // 2`` at the top / left,
  the rest at the bottom / right). The OCNet configs (``configs/ocnet/``,
  semantic segmentation) use ``'official'`` because the tables report that
  code; the class default stays ``'paper'``.

The released code also puts a bias on the convs in front of each BN; such a
bias changes nothing (training-mode BN subtracts it with the batch mean, and
in eval mode it folds into the running mean), so mmctx leaves it out.
"""
import numbers
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from .attention import attention_matrix, check_impl, softmax_attention
from .checks import check_choice, check_int, check_norm_cfg

# OCP_VARIANTS is imported by name (by the OCNet heads)
__all__ = ['SelfAttention2d', 'InterlacedSparseSelfAttention', 'ObjectContextPooling',
           'ResidualObjectContext']

ISA_ORDERS = ('global_local', 'local_global', 'global', 'local')
OCP_VARIANTS = ('paper', 'official')
ISA_PADDINGS = ('end', 'symmetric')


@MODELS.register_module()
class SelfAttention2d(nn.Module):
    """Dense self-attention of OCNet (Yuan et al.) Eqs. 10-11 (returns the context Z).

    Args:
        in_channels: C of the input.
        key_channels: channels of theta/phi, d in Eq. 10 (None: C/2).
        value_channels: channels of delta (None: C/2).
        out_channels: channels of rho, i.e. of Z (None: C).
        norm_cfg: norm of the theta/phi conv-BN-ReLU (SyncBN in configs), and of
            rho when ``out_norm``.
        impl: 'fused' (SDPA), 'explicit' (formed matrix) or 'auto' (the
            default: :func:`.attention.resolve_impl` picks per call).
        out_norm: rho is 1x1 conv (no bias) -> norm -> ReLU, as in the ISA block
            of the authors' released code, instead of a plain 1x1 conv (§3.2).
        value_bias: whether delta's 1x1 conv has a bias (the released ISA
            block's has none).
    """
    _abbr_ = 'sa'
    identity_start = False  # returns the context Z, not X + Z

    def __init__(self,
                 in_channels: int,
                 key_channels: Optional[int] = None,
                 value_channels: Optional[int] = None,
                 out_channels: Optional[int] = None,
                 norm_cfg: dict = dict(type='BN'),
                 impl: str = 'auto',
                 out_norm: bool = False,
                 value_bias: bool = True) -> None:
        super().__init__()
        owner = type(self).__name__
        in_channels = check_int('in_channels', in_channels, owner=owner)
        half = max(in_channels // 2, 1)
        self.in_channels = in_channels
        self.key_channels = check_int('key_channels', key_channels, allow_none=True,
                                      owner=owner) or half
        self.value_channels = check_int('value_channels', value_channels, allow_none=True,
                                        owner=owner) or half
        self.out_channels = check_int('out_channels', out_channels, allow_none=True,
                                      owner=owner) or in_channels
        self.impl = check_impl(impl)
        self.out_norm = bool(out_norm)
        check_norm_cfg(norm_cfg, owner=owner)

        def embed():
            return nn.Sequential(
                ConvModule(in_channels, self.key_channels, 1, norm_cfg=norm_cfg),
                ConvModule(self.key_channels, self.key_channels, 1, norm_cfg=norm_cfg))

        self.query = embed()  # theta
        self.key = embed()  # phi
        self.value = nn.Conv2d(in_channels, self.value_channels, 1, bias=value_bias)  # delta
        if self.out_norm:  # rho
            self.out = ConvModule(self.value_channels, self.out_channels, 1, norm_cfg=norm_cfg)
        else:
            self.out = nn.Conv2d(self.value_channels, self.out_channels, 1)

    def _qkv(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        # channels last (a no-op for ISA's groups, which are written so): the
        # 1x1 convs keep the layout, so each (B, 1, N, d) below is a view with
        # unit stride on d, the layout the fused attention reads
        x = x.contiguous(memory_format=torch.channels_last)
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
        # q, k, v live for the attention only, and its (B, 1, N, C) output
        # until its copy to a map: neither is held through the output conv
        y = softmax_attention(*self._qkv(x), self.key_channels**-0.5, impl=self.impl)
        y = y[:, 0].transpose(1, 2).reshape(b, self.value_channels, h, w)
        return self.out(y)


# Group layouts. A map is split into groups (and the groups regrouped) by one
# permute-and-copy each way, and the copy writes channels last: a (G, C, Q_h, Q_w)
# tensor whose memory is (G, Q_h, Q_w, C). The 1x1 convs of the relation keep that
# layout, so the tokens (G, Q_h * Q_w, d) that the attention reads are contiguous
# views of their outputs instead of copies (SelfAttention2d._qkv); the merge back
# to the map writes the usual contiguous (B, C, H, W).


def _channels_last_groups(x: torch.Tensor, g: int, qh: int, qw: int) -> torch.Tensor:
    """Copy a (..., Q_h, Q_w, C) permuted view into (G, C, Q_h, Q_w) channels last."""
    c = x.shape[-1]
    return x.reshape(g, qh, qw, c).permute(0, 3, 1, 2)


def _global_groups(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*ph*pw, C, H/ph, W/pw): positions of equal offset (Eq. 12-13)."""
    b, c, h, w = x.shape
    qh, qw = h // ph, w // pw
    x = x.reshape(b, c, qh, ph, qw, pw).permute(0, 3, 5, 2, 4, 1)  # (b, ph, pw, qh, qw, c)
    return _channels_last_groups(x, b * ph * pw, qh, qw)


def _from_global_groups(x: torch.Tensor, b: int, ph: int, pw: int) -> torch.Tensor:
    """Inverse of :func:`_global_groups` (a contiguous map)."""
    _, c, qh, qw = x.shape
    x = x.reshape(b, ph, pw, c, qh, qw).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, c, qh * ph, qw * pw)


def _local_groups(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*(H/ph)*(W/pw), C, ph, pw): contiguous blocks (Eq. 18-19)."""
    b, c, h, w = x.shape
    qh, qw = h // ph, w // pw
    x = x.reshape(b, c, qh, ph, qw, pw).permute(0, 2, 4, 3, 5, 1)  # (b, qh, qw, ph, pw, c)
    return _channels_last_groups(x, b * qh * qw, ph, pw)


def _from_local_groups(x: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`_local_groups` (a contiguous map)."""
    _, c, ph, pw = x.shape
    x = x.reshape(b, h // ph, w // pw, c, ph, pw).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, h, w)


def _regroup(x: torch.Tensor, b: int, ah: int, aw: int) -> torch.Tensor:
    """(B*A_h*A_w, C, B_h, B_w) -> (B*B_h*B_w, C, A_h, A_w) with one permute.

    The group index and the position inside a group swap roles: from
    :func:`_global_groups`' layout (A = (P_h, P_w), B = (Q_h, Q_w)) this is
    :func:`_local_groups` of the merged map (Eq. 18, ``X^l = P^T Z^g``), and
    from the local layout (A = (Q_h, Q_w)) the global one; one copy where
    merging the map and splitting it again would make two.
    """
    _, c, bh, bw = x.shape
    x = x.reshape(b, ah, aw, c, bh, bw).permute(0, 4, 5, 1, 2, 3)  # (b, bh, bw, ah, aw, c)
    return _channels_last_groups(x, b * bh * bw, ah, aw)


@MODELS.register_module()
class InterlacedSparseSelfAttention(nn.Module):
    """Interlaced sparse self-attention, OCNet (Yuan et al.) Eqs. 12-21, Algorithm 1.

    Args:
        in_channels: C of the input.
        groups: (P_h, P_w), the numbers of groups along H and W; local blocks
            are P_h x P_w, global groups gather every P_h-th row and P_w-th
            column (Algorithm 1). Default (8, 8), the paper's choice.
        order: ``'global_local'`` (the paper's, Eq. 9), ``'local_global'``
            (Table 1), or one relation only: ``'global'`` (Eqs. 12-17, the
            §4.3 "only global relation" ablation, 78.9 mIoU) or ``'local'``
            (Eqs. 18-21 applied to X, "only local relation", 77.2). A single
            relation builds only its own :class:`SelfAttention2d`.
        out_channels: channels of Z (default C).
        impl: 'fused' (SDPA), 'explicit' or 'auto' (the default), for both
            relation stages.
        variant: ``'paper'`` or ``'official'`` (see the module docstring):
            the official variant makes each relation's rho conv-BN-ReLU,
            ``value_channels`` default to C and pads symmetrically.
        padding: where a map not divisible by the groups is padded:
            ``'end'`` (bottom / right) or ``'symmetric'`` (``pad // 2`` at the
            top / left); None takes the variant's.
        **sa_kwargs: key_channels, value_channels, norm_cfg of the
            :class:`SelfAttention2d` of each relation.
    """
    _abbr_ = 'isa'
    identity_start = False  # returns the context Z, not X + Z

    def __init__(self,
                 in_channels: int,
                 groups: Tuple[int, int] = (8, 8),
                 order: str = 'global_local',
                 out_channels: Optional[int] = None,
                 impl: str = 'auto',
                 variant: str = 'paper',
                 padding: Optional[str] = None,
                 **sa_kwargs) -> None:
        super().__init__()
        owner = type(self).__name__
        in_channels = check_int('in_channels', in_channels, owner=owner)
        try:
            groups = tuple(groups)
        except TypeError:
            groups = (groups, )
        if len(groups) != 2 or any(isinstance(g, bool) or not isinstance(g, numbers.Integral)
                                   or g < 1 for g in groups):
            raise ValueError(f'{owner}: groups must be two positive ints (P_h, P_w), '
                             f'got {groups}')
        self.groups = tuple(int(g) for g in groups)
        self.order = check_choice('order', order, ISA_ORDERS, owner=owner)
        self.variant = check_choice('variant', variant, OCP_VARIANTS, owner=owner)
        if padding is None:
            padding = 'symmetric' if variant == 'official' else 'end'
        self.padding = check_choice('padding', padding, ISA_PADDINGS, owner=owner)
        out_channels = check_int('out_channels', out_channels, allow_none=True,
                                 owner=owner) or in_channels
        if variant == 'official':
            sa_kwargs.setdefault('out_norm', True)
            sa_kwargs.setdefault('value_bias', False)
        self.stages = tuple(order.split('_'))
        relations = {}
        for i, stage in enumerate(self.stages):
            c_in = in_channels if i == 0 else out_channels
            kwargs = dict(sa_kwargs)
            if variant == 'official' and kwargs.get('value_channels') is None:
                kwargs['value_channels'] = c_in
            relations[stage] = SelfAttention2d(c_in, out_channels=out_channels, impl=impl,
                                               **kwargs)
        self.global_relation = relations.get('global')
        self.local_relation = relations.get('local')

    @property
    def impl(self) -> str:
        """The ``impl`` of both relation stages."""
        return self.relation(self.stages[0]).impl

    @impl.setter
    def impl(self, value: str) -> None:
        check_impl(value)
        for which in self.stages:
            self.relation(which).impl = value

    def relation(self, which: str) -> SelfAttention2d:
        """The :class:`SelfAttention2d` of the ``'global'`` or ``'local'`` stage."""
        return self.global_relation if which == 'global' else self.local_relation

    def _padding(self, h, w):
        """(left, right, top, bottom) zero padding up to multiples of the groups."""
        ph, pw = self.groups
        dh, dw = (-h) % ph, (-w) % pw
        top, left = (dh // 2, dw // 2) if self.padding == 'symmetric' else (0 * dh, 0 * dw)
        return left, dw - left, top, dh - top

    def _pad(self, x: torch.Tensor):
        h, w = x.shape[-2:]
        pad = self._padding(h, w)
        # under tracing always pad (by zero rows where none are needed), so the
        # traced graph serves every size: the amounts are traced from x.shape
        if torch.jit.is_tracing() or any(int(p) > 0 for p in pad):
            return F.pad(x, pad), pad
        return x, None

    def _stage(self, x: torch.Tensor, which: str) -> torch.Tensor:
        b, _, h, w = x.shape
        ph, pw = self.groups
        if which == 'global':
            return _from_global_groups(self.global_relation(_global_groups(x, ph, pw)),
                                       b, ph, pw)
        return _from_local_groups(self.local_relation(_local_groups(x, ph, pw)), b, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y, pad = self._pad(x)
        b, _, hp, wp = y.shape
        ph, pw = self.groups
        qh, qw = hp // ph, wp // pw
        first, last = self.stages[0], self.stages[-1]
        split = _global_groups if first == 'global' else _local_groups
        # one name rebound step by step: the padded map, the groups and the
        # first stage's output are each freed once the next copy is made
        y = split(y, ph, pw)
        y = self.relation(first)(y)
        if len(self.stages) == 2:  # straight to the other stage's groups
            y = _regroup(y, b, *((ph, pw) if first == 'global' else (qh, qw)))
            y = self.relation(last)(y)
        if last == 'global':
            y = _from_global_groups(y, b, ph, pw)
        else:
            y = _from_local_groups(y, b, hp, wp)
        if pad is None:
            return y
        left, top = pad[0], pad[2]
        return y[..., top:top + h, left:left + w]

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """The dense composite relation W^l P^T W^g P of Eq. 9, (B, 1, HW, HW).

        (For a single-relation ``order``, that relation's W^g or W^l.) Formed
        explicitly, for analysis only. Rows sum to 1 where the groups divide
        H and W; on a padded map the padded positions are keys too (as in the
        forward pass), and their rows and columns are dropped after
        composition, so a row sums to 1 minus the weight it gave them.
        """
        h, w = x.shape[-2:]
        left, _, top, _ = self._padding(h, w)
        xp = F.pad(x, self._padding(h, w))
        _, _, hp, wp = xp.shape
        index = torch.arange(hp * wp, device=x.device, dtype=torch.long).reshape(1, 1, hp, wp)
        dense, src = None, xp
        for i, which in enumerate(self.stages):
            if i > 0:  # the second stage sees the first stage's output
                src = self._stage(xp, self.stages[0])
            mat = self._block_matrix(src, index, which)
            dense = mat if dense is None else mat @ dense
        keep = index[0, 0, top:top + h, left:left + w].flatten()
        return dense[:, keep][:, :, keep][:, None]

    def _block_matrix(self, x, index, which):
        """The (B, N, N) sparse relation W^g or W^l in original position order."""
        b = x.shape[0]
        ph, pw = self.groups
        n = index.numel()
        sa = self.relation(which)
        split = _global_groups if which == 'global' else _local_groups
        groups = split(x, ph, pw)
        ids = split(index.expand(b, 1, -1, -1), ph, pw).flatten(1)  # (B*G, Q)
        att = sa.get_attention(groups)[:, 0]  # (B*G, Q, Q)
        g = att.shape[0] // max(b, 1)
        full = att.new_zeros(b, n, n)
        rows = ids.reshape(b, g, -1, 1).expand(-1, -1, -1, ids.shape[1])
        cols = ids.reshape(b, g, 1, -1).expand(-1, -1, ids.shape[1], -1)
        bidx = torch.arange(b, device=x.device).reshape(b, 1, 1, 1).expand_as(rows)
        full[bidx, rows, cols] = att.reshape(b, g, ids.shape[1], ids.shape[1])
        return full


@MODELS.register_module()
class ObjectContextPooling(nn.Module):
    """OCP of OCNet (Yuan et al.) §3.2: the object context of every pixel by SA or ISA.

    Args:
        in_channels: C of the input.
        attention: 'sa' (dense relation) or 'isa' (interlaced sparse).
        **attention_kwargs: passed to :class:`SelfAttention2d` or
            :class:`InterlacedSparseSelfAttention`. ``variant`` is accepted
            with 'sa' too: the released dense SA block is the paper's.
    """
    _abbr_ = 'ocp'
    identity_start = False  # returns the context Z, not X + Z

    def __init__(self, in_channels: int, attention: str = 'isa', **attention_kwargs) -> None:
        super().__init__()
        if attention == 'sa':
            check_choice('variant', attention_kwargs.pop('variant', 'paper'), OCP_VARIANTS,
                         owner=type(self).__name__)
            self.attention = SelfAttention2d(in_channels, **attention_kwargs)
        elif attention == 'isa':
            self.attention = InterlacedSparseSelfAttention(in_channels, **attention_kwargs)
        else:
            raise ValueError(f"attention must be 'sa' or 'isa', got {attention!r}")

    @property
    def impl(self) -> str:
        return self.attention.impl

    @impl.setter
    def impl(self, value: str) -> None:
        self.attention.impl = value

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """The map of the SA or ISA inside (see theirs)."""
        return self.attention.get_attention(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x)


@MODELS.register_module()
class ResidualObjectContext(ObjectContextPooling):
    """``X + OCP(X)``: object context pooling (SA or ISA) as a residual plugin.

    :class:`ObjectContextPooling` returns the object context Z (OCNet, Yuan et
    al., Eq. 11); OCNet's heads concatenate it with X. Inside a backbone
    (OCNet §4.5, Table 12: "object context pooling module based on
    interlaced sparse self-attention before the last block of res-4", "similar
    to" Wang et al.'s non-local block) the module must keep the features, so
    this block returns ``X + Z`` like a non-local block
    (Cao et al., "Global Context Networks", Eq. 1, ``z = x + W_z y``), with the
    last projection rho zero-initialised so the pretrained backbone is
    unchanged at the start.

    Args:
        in_channels: C of X (and of Z).
        attention: ``'isa'`` (OCNet Table 12 "+ISA") or ``'sa'``.
        zero_init: zero rho of the relation applied last (the local relation
            for ISA's ``'global_local'`` order), its conv weight and bias, so
            the block starts as the identity while every other projection
            still receives gradients (zeroing both ISA stages' rho would give
            the first stage none). Refused where rho ends in BN-ReLU
            (``variant='official'``, ``out_norm=True``): a zero output there
            needs the ReLU at or below 0, where it passes no gradient, so the
            block could never leave the identity.
        **attention_kwargs: as :class:`ObjectContextPooling` (``groups``,
            ``order``, ``key_channels``, ``value_channels``, ``norm_cfg``,
            ``impl``, ``variant``); ``out_channels`` must stay C.
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
        if zero_init and not isinstance(self.last_projection(), nn.Conv2d):
            raise ValueError(
                'ResidualObjectContext: zero_init=True needs rho to be a plain 1x1 conv; '
                'with rho = conv-BN-ReLU (variant=\'official\' or out_norm=True) a zero '
                'start leaves the ReLU without gradient. Use variant=\'paper\' or '
                'zero_init=False')
        self.init_weights()

    @property
    def identity_start(self) -> bool:
        """With ``zero_init``: rho is zero, so the block starts as X (init_weights)."""
        return self.zero_init

    def last_projection(self) -> nn.Module:
        """rho of the relation stage whose output is Z (a Conv2d or a ConvModule)."""
        att = self.attention
        if isinstance(att, SelfAttention2d):
            return att.out
        assert isinstance(att, InterlacedSparseSelfAttention)
        return att.relation(att.stages[-1]).out

    def init_weights(self) -> None:
        """Zero rho (re-applied after a parent's init, e.g. ResNet's Kaiming)."""
        if self.zero_init:
            rho = self.last_projection()
            nn.init.zeros_(rho.weight)
            nn.init.zeros_(rho.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)
