"""FCN + GloRe unit (Chen et al., CVPR 2019, "Graph-Based Global Reasoning Networks"),
a comparison head of Woo et al. (GCNL) Table 1.

GloRe unit, on X in R^{C x L} (L = H*W positions):
- reduce and project (Chen et al. Eq. 1-2): X' = phi(X) in R^{C' x L} (1x1 conv),
  B = theta(X) in R^{N x L} (1x1 conv, N nodes), node states V = X' B^T in R^{C' x N};
- graph convolution (Eq. 3): Z = ((I - A_g) V^T) W_g, with the learnt adjacency A_g as a 1D
  conv across nodes and the state update W_g as a 1D conv across channels, then ReLU;
- reverse projection (Eq. 4): Y = Z^T B in R^{C' x L}, extended back to C by a 1x1 conv +
  BN and added to X (residual).
The head layout is mmseg's NLHead: conv 3x3 -> GloRe -> conv 3x3 -> (concat) -> classifier.
Defaults C' = channels / 2 and N = C' / 4 (Chen et al. §3 use reduced state/node dimensions).
"""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

__all__ = ['GloReUnit', 'GloReHead']


class GloReUnit(nn.Module):
    """Global reasoning unit (Chen et al. Eqs. 1-4)."""

    def __init__(self, in_channels: int, state_channels: int = None, num_nodes: int = None,
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__()
        state_channels = state_channels or in_channels // 2
        num_nodes = num_nodes or max(state_channels // 4, 1)
        if state_channels < 1 or num_nodes < 1:
            raise ValueError(f'state_channels={state_channels} and num_nodes={num_nodes} '
                             'must be positive')
        self.reduce = nn.Conv2d(in_channels, state_channels, 1)
        self.project = nn.Conv2d(in_channels, num_nodes, 1)
        self.adjacency = nn.Conv1d(num_nodes, num_nodes, 1)  # A_g, mixes nodes
        self.state_update = nn.Conv1d(state_channels, state_channels, 1, bias=False)  # W_g
        self.extend = nn.Conv2d(state_channels, in_channels, 1, bias=False)
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]

    def forward(self, x):
        b, _, h, w = x.shape
        xs = self.reduce(x).flatten(2)  # (B, C', L)
        proj = self.project(x).flatten(2)  # (B, N, L)
        v = torch.bmm(xs, proj.transpose(1, 2))  # (B, C', N)
        v_nodes = v.transpose(1, 2)  # (B, N, C')
        z = v_nodes - self.adjacency(v_nodes)  # (I - A_g) V
        z = torch.relu(self.state_update(z.transpose(1, 2)))  # W_g, (B, C', N)
        y = torch.bmm(z, proj).view(b, -1, h, w)  # reverse projection
        return x + self.norm(self.extend(y))


@MODELS.register_module()
class GloReHead(FCNHead):
    """FCN head with a :class:`GloReUnit` between its two 3x3 convs."""

    def __init__(self, state_channels: int = None, num_nodes: int = None, **kwargs) -> None:
        super().__init__(num_convs=2, **kwargs)
        self.glore = GloReUnit(self.channels, state_channels, num_nodes, self.norm_cfg)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        output = self.convs[1](self.glore(self.convs[0](x)))
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
