"""Efficient attention: Shen, Zhang, Zhao, Yi, Li, "Efficient Attention:
Attention with Linear Complexities", WACV 2021 (arXiv:1812.01243).

Per head i, on n = H * W positions (Shen et al. Eq. 3)::

    E(Q, K, V) = rho_q(Q) (rho_k(K)^T V)

with Q, K in R^{n x d_k}, V in R^{n x d_v}; rho_q is a softmax over the d_k
channels of each query row, rho_k a softmax over the n positions of each key
column. The product is formed right-to-left, so memory is O(d_k d_v) instead
of O(n^2). The heads' outputs are concatenated, projected back to C by a 1x1
conv and added to the input (the paper's residual module).

``get_attention`` forms, for analysis only, the n x n map the block never
forms: rho_q(Q) rho_k(K)^T per head, whose product with V is Eq. 3 computed
left-to-right (Shen et al. §3.2, the equivalence with dot-product attention).
Its rows sum to 1 (each a convex combination of the softmax columns of
rho_k(K)). :meth:`get_key_maps` gives those d_k columns themselves, each a
distribution over the n positions, which Shen et al. §3.3 read as "global
attention maps". The weights keep PyTorch's default initialisation (no
identity start, so no ``init_weights``).
"""
import torch
import torch.nn as nn
from mmengine.registry import MODELS

from .checks import check_channels, check_divisible

__all__ = ['EfficientAttention2d']


@MODELS.register_module()
class EfficientAttention2d(nn.Module):
    """Multi-head efficient attention with residual output (Shen et al. Eq. 3).

    Args:
        in_channels: C.
        key_channels: d_k summed over heads (default ``C // 2``).
        value_channels: d_v summed over heads (default ``C // 2``).
        num_heads: heads; must divide both.
    """
    _abbr_ = 'ea'
    identity_start = False  # PyTorch's default init

    def __init__(self, in_channels: int, key_channels: int = None,
                 value_channels: int = None, num_heads: int = 8) -> None:
        super().__init__()
        check_channels('in_channels', in_channels)
        key_channels = key_channels or in_channels // 2
        value_channels = value_channels or in_channels // 2
        check_channels('key_channels', key_channels)
        check_channels('value_channels', value_channels)
        check_divisible(key_channels, num_heads, 'key_channels')
        check_divisible(value_channels, num_heads, 'value_channels')
        self.in_channels = in_channels
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.num_heads = num_heads
        self.query = nn.Conv2d(in_channels, key_channels, 1)
        self.key = nn.Conv2d(in_channels, key_channels, 1)
        self.value = nn.Conv2d(in_channels, value_channels, 1)
        self.reproject = nn.Conv2d(value_channels, in_channels, 1)

    def _heads(self, t: torch.Tensor, channels: int) -> torch.Tensor:
        """(B, channels, H, W) -> (B, heads, channels / heads, H*W)."""
        b, _, h, w = t.shape
        return t.reshape(b, self.num_heads, channels // self.num_heads, h * w)

    def get_key_maps(self, x: torch.Tensor) -> torch.Tensor:
        """rho_k(K)^T per head, (B, heads, d_k / heads, H*W); rows sum to 1."""
        return self._heads(self.key(x), self.key_channels).softmax(dim=3)

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """rho_q(Q) rho_k(K)^T per head, (B, heads, H*W, H*W); rows sum to 1."""
        q = self._heads(self.query(x), self.key_channels).softmax(dim=2)
        return torch.matmul(q.transpose(2, 3), self.get_key_maps(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        q = self._heads(self.query(x), self.key_channels)  # (B, h, dk, n)
        v = self._heads(self.value(x), self.value_channels)  # (B, h, dv, n)
        q = q.softmax(dim=2)  # rho_q: over the channels of each position
        k = self.get_key_maps(x)  # rho_k: over the positions of each channel
        context = torch.matmul(k, v.transpose(2, 3))  # (B, h, dk, dv) = rho_k(K)^T V
        out = torch.matmul(context.transpose(2, 3), q)  # (B, h, dv, n) = (rho_q(Q) G)^T
        return x + self.reproject(out.reshape(b, self.value_channels, h, w))
