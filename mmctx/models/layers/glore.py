"""Global reasoning unit (GloRe): Chen, Rohrbach, Yan, Yan, Feng, Kalantidis,
"Graph-Based Global Reasoning Networks", CVPR 2019 (arXiv:1811.12814).

On X in R^{C x L} (L = H * W positions):

- reduce and project (Chen et al. Eqs. 1-2): X' = phi(X) in R^{C' x L}
  (1x1 conv), B = theta(X) in R^{N x L} (1x1 conv, N nodes), node states
  V = X' B^T in R^{C' x N};
- graph convolution (Eq. 3): Z = ((I - A_g) V) W_g, the learnt adjacency A_g
  a 1D conv across nodes and the state update W_g a 1D conv across channels,
  then ReLU;
- reverse projection (Eq. 4): Y = Z B in R^{C' x L}, extended back to C by a
  1x1 conv and a norm (``norm_cfg``; ``None``: no norm) and added to X.

Defaults C' = C / 2 and N = C' / 4 (Chen et al. §3 use reduced state / node
dimensions). The unit has no ``get_attention``: between positions it has no
linear map (the graph convolution's ReLU sits between projection and reverse
projection), and its projection B is no attention (a plain linear map, rows
of nodes not positions, no normalisation). :meth:`get_projection` returns B
(Eq. 2): row n holds the weights with which node n gathers the positions. The
weights keep PyTorch's default initialisation (no identity start, so no
``init_weights``).
"""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.registry import MODELS

from .checks import check_channels, check_norm_cfg

__all__ = ['GloReUnit']


@MODELS.register_module()
class GloReUnit(nn.Module):
    """Global reasoning unit (Chen et al. Eqs. 1-4); shape-preserving.

    Args:
        in_channels: C.
        state_channels: C' (default ``C // 2``).
        num_nodes: N (default ``max(C' // 4, 1)``).
        norm_cfg: norm after the extending conv, or ``None`` for none.
    """
    _abbr_ = 'glore'
    identity_start = False  # PyTorch's default init

    def __init__(self, in_channels: int, state_channels: int = None, num_nodes: int = None,
                 norm_cfg: Optional[dict] = dict(type='BN')) -> None:
        super().__init__()
        check_channels('in_channels', in_channels)
        state_channels = state_channels or in_channels // 2
        num_nodes = num_nodes or max(state_channels // 4, 1)
        check_channels('state_channels', state_channels)
        check_channels('num_nodes', num_nodes)
        check_norm_cfg(norm_cfg)
        self.in_channels = in_channels
        self.state_channels = state_channels
        self.num_nodes = num_nodes
        self.reduce = nn.Conv2d(in_channels, state_channels, 1)  # phi
        self.project = nn.Conv2d(in_channels, num_nodes, 1)  # theta
        self.adjacency = nn.Conv1d(num_nodes, num_nodes, 1)  # A_g, mixes nodes
        self.state_update = nn.Conv1d(state_channels, state_channels, 1, bias=False)  # W_g
        self.extend = nn.Conv2d(state_channels, in_channels, 1, bias=False)
        self.norm = (nn.Identity() if norm_cfg is None else
                     build_norm_layer(norm_cfg, in_channels)[1])

    def get_projection(self, x: torch.Tensor) -> torch.Tensor:
        """B of Eq. 2, (B, N, H*W) (not normalised)."""
        return self.project(x).flatten(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        xs = self.reduce(x).flatten(2)  # X', (B, C', L)
        proj = self.get_projection(x)  # B, (B, N, L)
        v = torch.bmm(xs, proj.transpose(1, 2))  # V = X' B^T, (B, C', N)
        v_nodes = v.transpose(1, 2)  # (B, N, C')
        z = v_nodes - self.adjacency(v_nodes)  # (I - A_g) V
        z = torch.relu(self.state_update(z.transpose(1, 2)))  # W_g, (B, C', N)
        y = torch.bmm(z, proj).reshape(b, self.state_channels, h, w)  # Y = Z B
        return x + self.norm(self.extend(y))
