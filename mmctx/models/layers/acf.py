"""Attentional class feature (ACF) module: Zhang, Zhang, Zhou, Cai, Liang,
Xu, Ding, "ACFNet: Attentional Class Feature Network for Semantic
Segmentation", ICCV 2019 (arXiv:1909.09408).

On features F in R^{C x L} (L = H * W) and the coarse segmentation
P = softmax_k(coarse classifier(F)) in R^{L x K} (a sigmoid for K = 1):

- class center (ACFNet Eq. 1; written here as the P-weighted mean, i.e.
  normalised by sum_i P_ik, so its scale does not depend on the image size):
  F_class(k) = sum_i P_ik F_i / sum_i P_ik;
- attentional class feature (Eq. 2): F_a(i) = sum_k P_ik F_class(k);
- the module output is conv1x1([F, F_a]) (concat and fuse).

Eqs. 1-2 together are one linear map of the positions,
F_a(i) = sum_j A_ij F_j with A_ij = sum_k P_ik P_jk / (sum_l P_lk + eps):
``get_attention`` returns A, (B, 1, L, L); its rows sum to sum_k P_ik = 1 (up
to eps) for the softmax, not for the K = 1 sigmoid (``attention_normalised``).
:meth:`get_class_attention` returns P itself, (B, L, K), the class attention
of Eq. 2. :meth:`forward_with_coarse` also returns the
coarse logits, which the ACF head supervises with its own loss. The weights
keep their default initialisation (no identity start, so no ``init_weights``).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from .checks import check_channels, check_norm_cfg

__all__ = ['AttentionalClassFeature', 'attentional_class_feature']


def attentional_class_feature(feats: torch.Tensor, probs: torch.Tensor,
                              eps: float = 1e-6) -> torch.Tensor:
    """ACFNet Eqs. 1-2: feats (B, C, H, W), probs (B, K, H, W) -> (B, C, H, W)."""
    f = feats.flatten(2)  # (B, C, L)
    p = probs.flatten(2)  # (B, K, L)
    centers = torch.bmm(f, p.transpose(1, 2)) / (p.sum(2).unsqueeze(1) + eps)  # (B, C, K)
    return torch.bmm(centers, p).view_as(feats)


@MODELS.register_module()
class AttentionalClassFeature(nn.Module):
    """Coarse classifier -> class centers -> attentional class feature -> fuse.

    Args:
        in_channels: C.
        num_classes: K, the coarse classifier's outputs.
        conv_cfg / norm_cfg / act_cfg: of the fusing 1x1 ``ConvModule``.
        eps: added to sum_i P_ik in the class centers.
    """
    _abbr_ = 'acf'
    identity_start = False  # PyTorch's default init

    def __init__(self, in_channels: int, num_classes: int, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'), eps: float = 1e-6) -> None:
        super().__init__()
        check_channels('in_channels', in_channels)
        check_channels('num_classes', num_classes)
        check_norm_cfg(norm_cfg)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.eps = eps
        self.coarse_seg = nn.Conv2d(in_channels, num_classes, 1)
        self.fuse = ConvModule(2 * in_channels, in_channels, 1, conv_cfg=conv_cfg,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)

    @staticmethod
    def _probs(coarse: torch.Tensor) -> torch.Tensor:
        return coarse.softmax(1) if coarse.shape[1] > 1 else coarse.sigmoid()

    @property
    def attention_normalised(self) -> bool:
        """Rows of :meth:`get_attention` sum to 1 for a softmax over K > 1 classes."""
        return self.num_classes > 1

    def get_class_attention(self, x: torch.Tensor) -> torch.Tensor:
        """P of Eq. 2, (B, H*W, K)."""
        return self._probs(self.coarse_seg(x)).flatten(2).transpose(1, 2)

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """A = P diag(1 / (sum_l P_lk + eps)) P^T of Eqs. 1-2, (B, 1, H*W, H*W)."""
        p = self.get_class_attention(x)  # (B, L, K)
        return torch.matmul(p / (p.sum(1, keepdim=True) + self.eps), p.transpose(1, 2))[:, None]

    def forward_with_coarse(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(module output (B, C, H, W), coarse logits (B, K, H, W))."""
        coarse = self.coarse_seg(x)
        acf = attentional_class_feature(x, self._probs(coarse), self.eps)
        return self.fuse(torch.cat([x, acf], 1)), coarse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_coarse(x)[0]
