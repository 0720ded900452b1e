"""FCN + Efficient Attention (Shen et al., WACV 2021), a comparison head of Yuan et al. (OCNet) Tables 3-4.

Efficient attention (Shen et al. Eq. 3, per head i, on n = H*W positions)::

    E(Q, K, V) = rho_q(Q) (rho_k(K)^T V)

with Q, K in R^{n x d_k}, V in R^{n x d_v}; rho_q = softmax over the d_k channels of each
query row, rho_k = softmax over the n positions of each key column. The product is formed
right-to-left, so memory is O(d_k d_v) instead of O(n^2). The heads' outputs are
concatenated, projected by a 1x1 conv and added to the input (residual, as in the paper's
module). The head layout follows mmseg's NLHead: conv 3x3 -> block -> conv 3x3 ->
(concat input, conv) -> classifier.
"""
import torch
import torch.nn as nn
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

__all__ = ['EfficientAttention2d', 'EfficientAttentionHead']


class EfficientAttention2d(nn.Module):
    """Multi-head efficient attention with residual output (Shen et al. Eq. 3)."""

    def __init__(self, in_channels: int, key_channels: int = None, value_channels: int = None,
                 num_heads: int = 8) -> None:
        super().__init__()
        key_channels = key_channels or in_channels // 2
        value_channels = value_channels or in_channels // 2
        for name, ch in (('key_channels', key_channels), ('value_channels', value_channels)):
            if ch % num_heads:
                raise ValueError(f'{name}={ch} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.query = nn.Conv2d(in_channels, key_channels, 1)
        self.key = nn.Conv2d(in_channels, key_channels, 1)
        self.value = nn.Conv2d(in_channels, value_channels, 1)
        self.reproject = nn.Conv2d(value_channels, in_channels, 1)

    def forward(self, x):
        b, _, h, w = x.shape
        heads = self.num_heads
        q = self.query(x).flatten(2).view(b, heads, -1, h * w)  # (B, h, dk, n)
        k = self.key(x).flatten(2).view(b, heads, -1, h * w)
        v = self.value(x).flatten(2).view(b, heads, -1, h * w)  # (B, h, dv, n)
        q = q.softmax(dim=2)  # rho_q: over channels of each position
        k = k.softmax(dim=3)  # rho_k: over positions of each channel
        context = torch.matmul(k, v.transpose(2, 3))  # (B, h, dk, dv) = rho_k(K)^T V
        out = torch.matmul(context.transpose(2, 3), q)  # (B, h, dv, n) = (rho_q(Q) G)^T
        return x + self.reproject(out.reshape(b, -1, h, w))


@MODELS.register_module()
class EfficientAttentionHead(FCNHead):
    """FCN head with :class:`EfficientAttention2d` between its two 3x3 convs.

    Args:
        num_heads: attention heads.
        key_channels / value_channels: default ``channels // 2``.
        **kwargs: :class:`FCNHead` arguments (``num_convs`` fixed to 2).
    """

    def __init__(self, num_heads: int = 8, key_channels: int = None,
                 value_channels: int = None, **kwargs) -> None:
        super().__init__(num_convs=2, **kwargs)
        self.ea_block = EfficientAttention2d(self.channels, key_channels, value_channels,
                                             num_heads)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        output = self.convs[1](self.ea_block(self.convs[0](x)))
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
