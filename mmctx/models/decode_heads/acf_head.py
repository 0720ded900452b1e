"""Attentional Class Feature head (ACFNet, Zhang et al. ICCV 2019), a comparison head of
Woo et al. (GCNL) Table 1 ("ACFModule").

On the head features F in R^{C x L} (L = H*W) and a coarse segmentation
P = softmax_k(coarse classifier(F)) in R^{L x K}:
- class center (ACFNet Eq. 1; written here as the P-weighted mean, i.e. normalised by
  sum_i P_ik, so its scale does not depend on the image size):
  F_class(k) = sum_i P_ik F_i / sum_i P_ik;
- attentional class feature (Eq. 2): F_a(i) = sum_k P_ik F_class(k);
- the module output is conv1x1([F, F_a]) (concat + fuse), then the classifier.
The coarse prediction is supervised by its own loss (``coarse_loss_weight``), as ACFNet
trains its coarse segmentation.
"""
import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

__all__ = ['ACFHead', 'attentional_class_feature']


def attentional_class_feature(feats, probs, eps=1e-6):
    """ACFNet Eqs. 1-2: feats (B, C, H, W), probs (B, K, H, W) -> (B, C, H, W)."""
    f = feats.flatten(2)  # (B, C, L)
    p = probs.flatten(2)  # (B, K, L)
    centers = torch.bmm(f, p.transpose(1, 2)) / (p.sum(2).unsqueeze(1) + eps)  # (B, C, K)
    return torch.bmm(centers, p).view_as(feats)


@MODELS.register_module()
class ACFHead(FCNHead):
    """FCN conv 3x3 -> coarse classifier -> ACF module -> conv 3x3 -> classifier.

    Args:
        coarse_loss_weight: weight of the coarse segmentation's cross-entropy.
        **kwargs: :class:`FCNHead` arguments (``num_convs`` fixed to 2).
    """

    def __init__(self, coarse_loss_weight: float = 0.4, **kwargs) -> None:
        super().__init__(num_convs=2, **kwargs)
        self.coarse_seg = torch.nn.Conv2d(self.channels, self.out_channels, 1)
        self.fuse = ConvModule(2 * self.channels, self.channels, 1, conv_cfg=self.conv_cfg,
                               norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.coarse_loss_weight = coarse_loss_weight

    def _forward(self, inputs):
        x = self._transform_inputs(inputs)
        feats = self.convs[0](x)
        coarse = self.coarse_seg(feats)
        probs = coarse.softmax(1) if coarse.shape[1] > 1 else coarse.sigmoid()
        acf = attentional_class_feature(feats, probs)
        output = self.convs[1](self.fuse(torch.cat([feats, acf], 1)))
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return coarse, self.cls_seg(output)

    def forward(self, inputs):
        return self._forward(inputs)[1]

    def loss(self, inputs, batch_data_samples, train_cfg):
        coarse, logits = self._forward(inputs)
        losses = self.loss_by_feat(logits, batch_data_samples)
        for name, value in self.loss_by_feat(coarse, batch_data_samples).items():
            losses[f'coarse.{name}'] = (value * self.coarse_loss_weight
                                        if name.startswith('loss') else value)
        return losses
