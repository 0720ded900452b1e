"""Global context (GC) block of Cao et al., "Global Context Networks" (GCNet)
§4.2, Eq. 5.

    z_i = x_i + W_v2 ReLU(LN(W_v1 sum_j softmax_j(W_k x_j) x_j))

Three steps (Eq. 4): (a) context modelling -- attention pooling with one
query-independent map (``pooling='att'``) or global average pooling
(``'avg'``, SE-style); (b) a bottleneck transform C -> C/r -> C with layer
norm before the ReLU (§4.2; ``bottleneck=False`` is one C x C conv, the
"w/o ratio" row of Table 5(d); ``norm=None`` / ``act=None`` drop the LN /
the ReLU, its "r16" and "r16+ReLU" rows); (c) fusion by broadcast addition
(``'add'``) and/or channel rescaling with a sigmoid (``'mul'``, Table 5(f)).
The transform has 2 C^2 / r weights (§4.2).
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .checks import check_channels, check_choice, check_reduction

__all__ = ['GlobalContextBlock', 'pooling_weights', 'attention_pool']

FUSIONS = ('add', 'mul')


def pooling_weights(x: torch.Tensor, conv_mask: nn.Conv2d) -> torch.Tensor:
    """(B, 1, HW): alpha_j = softmax_j(W_k x_j), one weight per position (Eq. 4).

    ``conv_mask`` is W_k, a bias-free 1x1 conv C -> 1, applied as one
    (1 x C) by (C x HW) product on the (B, C, HW) view of ``x``.
    """
    weight = conv_mask.weight.view(1, 1, -1)
    return torch.matmul(weight, x.flatten(2)).softmax(-1)


def attention_pool(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, 1): sum_j alpha_j x_j, ``weights`` from :func:`pooling_weights`.

    The product is (C x HW) by (HW x 1) on the (B, C, HW) view of ``x``, so
    neither ``x`` nor its gradient is transposed: the former
    ``alpha (1 x HW) @ x^T`` took 1.9-2.2x mmcv ``ContextBlock``'s forward +
    backward time when ``x`` needs a gradient (as inside a network; 1 thread,
    1x256x64x64 and 1x1024x50x68).
    """
    return torch.matmul(x.flatten(2), weights.transpose(1, 2)).unsqueeze(-1)


@MODELS.register_module()
class GlobalContextBlock(nn.Module):
    """GC block (GCNet Eq. 5, Fig. 4(d)); shape-preserving.

    Args:
        in_channels: C.
        ratio: bottleneck ratio r (integer), hidden channels ``C // r``.
        pooling: ``'att'`` (attention pooling, W_k) or ``'avg'``.
        fusion: ``'add'``, ``'mul'`` or a sequence of both.
        norm: ``'LN'`` (layer norm over the C/r hidden channels) or None.
        act: ``'ReLU'`` after the norm, or None (a linear bottleneck).
        bottleneck: two-layer bottleneck (True) or a single C x C conv.
        zero_init: zero-init the last conv of the ``'add'`` transform so the
            block starts as the identity.
    """
    _abbr_ = 'gc'

    def __init__(self,
                 in_channels: int,
                 ratio: int = 16,
                 pooling: str = 'att',
                 fusion: Union[str, Sequence[str]] = 'add',
                 norm: Optional[str] = 'LN',
                 act: Optional[str] = 'ReLU',
                 bottleneck: bool = True,
                 zero_init: bool = True):
        super().__init__()
        check_channels('in_channels', in_channels)
        if bottleneck:
            check_reduction(ratio, in_channels, name='ratio')
        check_choice('pooling', pooling, ('att', 'avg'))
        fusions = (fusion, ) if isinstance(fusion, str) else tuple(fusion)
        if (len(fusions) == 0 or len(set(fusions)) != len(fusions)
                or any(f not in FUSIONS for f in fusions)):
            raise ValueError(f"fusion must be 'add', 'mul' or both, got "
                             f'{fusion!r}')
        check_choice('norm', norm, ('LN', None))
        check_choice('act', act, ('ReLU', None))
        self.in_channels = in_channels
        self.ratio = ratio
        self.pooling = pooling
        self.fusion = fusions
        self.norm = norm
        self.act = act
        self.bottleneck = bottleneck
        self.hidden_channels = in_channels // ratio if bottleneck else None
        if pooling == 'att':
            # W_k; no bias: a constant logit cancels in the softmax
            self.conv_mask = nn.Conv2d(in_channels, 1, 1, bias=False)
        self.channel_add = (self._transform()
                            if 'add' in fusions else None)
        self.channel_mul = (self._transform()
                            if 'mul' in fusions else None)
        self.zero_init = zero_init
        self.init_weights()

    def _transform(self) -> nn.Sequential:
        """W_v2 ReLU(LN(W_v1 .)) of Eq. 5 (or one C x C conv)."""
        c = self.in_channels
        if not self.bottleneck:
            return nn.Sequential(nn.Conv2d(c, c, 1))
        h = self.hidden_channels
        layers = [nn.Conv2d(c, h, 1)]
        if self.norm == 'LN':
            layers.append(nn.LayerNorm([h, 1, 1]))
        if self.act == 'ReLU':
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(h, c, 1))
        return nn.Sequential(*layers)

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_in')
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.zero_init and self.channel_add is not None:
            nn.init.zeros_(self.channel_add[-1].weight)
            nn.init.zeros_(self.channel_add[-1].bias)

    @property
    def identity_start(self) -> bool:
        """``init_weights`` makes the block the identity: ``zero_init`` and
        ``'add'`` fusion only (a ``'mul'`` fusion starts at sigmoid(W x) x)."""
        return self.zero_init and self.fusion == ('add', )

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, HW): the query-independent pooling weights alpha_j."""
        b, _, h, w = x.shape
        if self.pooling == 'avg':
            return x.new_full((b, 1, 1, h * w), 1.0 / (h * w))
        return pooling_weights(x, self.conv_mask)[:, None]

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1, 1): sum_j alpha_j x_j (Eq. 4, step a)."""
        if self.pooling == 'avg':
            return x.mean(dim=(2, 3), keepdim=True)
        return attention_pool(x, pooling_weights(x, self.conv_mask))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = self.context(x)
        out = x
        if self.channel_mul is not None:
            out = out * torch.sigmoid(self.channel_mul(ctx))
        if self.channel_add is not None:
            out = out + self.channel_add(ctx)
        return out
