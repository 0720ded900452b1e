"""CCNet-style context heads of GCNet (Cao et al. (GCNet) §5.4, Tables 12-13).

"The c5 feature is encoded by a context operator (e.g. CCNet, GCNet, SNLNet, NLNet) and
concatenated with c5 before the pixel-wise classification layer" (Cao et al. (GCNet) §5.4; Table 13's
"†" rows: concat of stride-8 c5 and the context head, then a 3x3 conv). Layout, as mmseg's
CCHead / NLHead: conv 3x3 (2048 -> 512) -> context block -> conv 3x3 -> concat c5 ->
conv 3x3 -> classifier. With ``context_cfg=None`` it is the FCN "baseline†" of Tables 12-13.
The block is any root-registry module taking ``in_channels`` (NonLocal2dBlock,
SimplifiedNonLocal2d, GlobalContextBlock with its Table 12b pooling / fusion, or mmcv's
NonLocal2d / ContextBlock); ``in_channels`` is filled with the head's ``channels``.
The heads of the other papers' blocks (``GCNLHead``, ``GloReHead``, ``CGNLHead``,
``EfficientAttentionHead``, ``ACFHead``) are this head with their block as default
``context_cfg``; the block is always ``self.context_block``.
"""
import copy

import torch
import torch.nn as nn
from mmengine.registry import MODELS as ROOT_MODELS
from mmseg.models.decode_heads.fcn_head import FCNHead
from mmseg.registry import MODELS

__all__ = ['ContextBlockHead']


@MODELS.register_module()
class ContextBlockHead(FCNHead):
    """FCN head (2 convs, concat input) with a context block between its two convs.

    Args:
        context_cfg: block config without ``in_channels`` (default: Cao et al.'s GC block,
            r = 4 for segmentation); ``None`` for the plain FCN baseline.
        **kwargs: :class:`FCNHead` arguments (``num_convs`` 2, ``concat_input`` True).
    """

    def __init__(self, context_cfg: dict = dict(type='GlobalContextBlock', ratio=4),
                 **kwargs) -> None:
        kwargs.setdefault('concat_input', True)
        super().__init__(num_convs=2, **kwargs)
        if context_cfg is None:
            self.context_block = nn.Identity()
        else:
            if not isinstance(context_cfg, dict) or 'type' not in context_cfg:
                raise ValueError(f'context_cfg must be a dict with a type, got {context_cfg!r}')
            cfg = self._block_cfg(copy.deepcopy(dict(context_cfg)))
            self.context_block = ROOT_MODELS.build(cfg)

    def _block_cfg(self, cfg: dict) -> dict:
        """The block's config, completed with what the head knows: ``in_channels``."""
        cfg['in_channels'] = self.channels
        return cfg

    def _classify(self, x, output):
        """(concat the input, conv 3x3) -> classifier, after the second conv."""
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        # one expression: the block's output is freed once the second conv has
        # read it, as in mmseg's GCHead (a name for it kept it alive through
        # the concat: +4.6 MiB, 8 %, at the peak for 1 x 512 x 97 x 97)
        return self._classify(x, self.convs[1](self.context_block(self.convs[0](x))))
