"""Bottleneck multi-head self-attention over visual words: Lee, Kim, Jung,
"Improving Object Detection Quality by Incorporating Global Contexts via
Self-Attention".

The paper's §3.2 treats every position of a (B, C, H, W) map as a "visual word":
the map is flattened to a (B, HW, C) sentence, query / key / value dense
layers (1x1 convolutions) map each word to C/4 channels (the bottleneck of
§3.4), scaled dot-product attention of Eq. 1,

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V,

is taken per head (§4.3, Table 3: ``num_heads``; d_k = C / 4 / heads), and a
fourth dense layer maps the C/4 channels back to C. The module is a residual
block, ``x + out(Attention(...))``, and may be stacked (``num_layers``,
Table 3's "Layer x Head").

§3.4 / §4.5 initialise the dense layers from a pre-trained ResNet bottleneck
block: see :func:`init_self_attention_from_bottleneck`, and
:class:`BottleneckAttentionInit` to do it from a config (``init_cfg``).
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS, WEIGHT_INITIALIZERS

from .attention import (attention_matrix, check_impl, from_heads,
                        softmax_attention, to_heads)
from .checks import (check_channels, check_divisible, check_int,
                     check_probability, check_reduction)

__all__ = [
    'SelfAttentionLayer', 'BottleneckSelfAttention',
    'init_self_attention_from_bottleneck', 'BottleneckAttentionInit'
]


class SelfAttentionLayer(nn.Module):
    """One residual self-attention layer: ``x + out(MHA(q(x), k(x), v(x)))``.

    Args:
        in_channels: C.
        inner_channels: channels of Q, K, V (C / reduction).
        num_heads: heads; must divide ``inner_channels``.
        attn_drop: dropout on the attention matrix (training only).
        impl: ``'fused'`` (SDPA), ``'explicit'`` (formed matrix) or ``'auto'``
            (the default: :func:`.attention.resolve_impl` picks per call).
    """

    def __init__(self,
                 in_channels: int,
                 inner_channels: int,
                 num_heads: int = 8,
                 attn_drop: float = 0.0,
                 impl: str = 'auto'):
        super().__init__()
        check_divisible(inner_channels, num_heads, 'inner_channels')
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.impl = check_impl(impl)
        self.scale = (inner_channels // num_heads)**-0.5  # 1 / sqrt(d_k)
        self.query = nn.Conv2d(in_channels, inner_channels, 1)
        self.key = nn.Conv2d(in_channels, inner_channels, 1)
        self.value = nn.Conv2d(in_channels, inner_channels, 1)
        self.out = nn.Conv2d(inner_channels, in_channels, 1)

    def _qkv(self, x: torch.Tensor):
        return (to_heads(self.query(x), self.num_heads),
                to_heads(self.key(x), self.num_heads),
                to_heads(self.value(x), self.num_heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        drop = self.attn_drop if self.training else 0.0
        y = softmax_attention(q, k, v, self.scale, dropout_p=drop,
                              impl=self.impl)
        return x + self.out(from_heads(y, x.shape[2], x.shape[3]))

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, HW, HW): softmax(Q K^T / sqrt(d_k)) of Eq. 1."""
        q, k, _ = self._qkv(x)
        return attention_matrix(q, k, self.scale)


@MODELS.register_module()
class BottleneckSelfAttention(BaseModule):
    """Bottleneck multi-head self-attention block of Lee et al. §3 (Fig. 2).

    Shape-preserving: (B, C, H, W) -> (B, C, H, W). Usable as a ResNet
    plugin (``position='after_conv3'``) or on a neck level (between C5 and
    P5, §3.3 and Fig. 4; on C4 before the RPN, Fig. 3).

    Args:
        in_channels: C.
        reduction: Q / K / V have ``C // reduction`` channels (4 in §3.4).
        num_heads: attention heads (Table 3; 4 gave the best AP). Must divide
            ``C // reduction``.
        num_layers: residual self-attention layers stacked (Table 3).
        attn_drop: dropout on the attention matrices (not used in the paper).
        impl: ``'fused'`` (``F.scaled_dot_product_attention``),
            ``'explicit'`` (the formed HW x HW matrix, the reference) or
            ``'auto'`` (the default: :func:`.attention.resolve_impl` picks
            per call).
        init_std: std of the normal init of all dense layers (biases 0),
            applied when the module is built and again by ``init_weights``
            before ``init_cfg``.
        init_cfg: run by ``init_weights`` (the runner calls it before
            training), e.g. the paper's init from a ResNet checkpoint,
            ``dict(type='BottleneckAttentionInit', checkpoint=...,
            prefix='layer4.1.')`` (:class:`BottleneckAttentionInit`).
    """
    _abbr_ = 'bsa'
    identity_start = False  # N(0, init_std) or a ResNet checkpoint (init_cfg)

    def __init__(self,
                 in_channels: int,
                 reduction: int = 4,
                 num_heads: int = 8,
                 num_layers: int = 1,
                 attn_drop: float = 0.0,
                 impl: str = 'auto',
                 init_std: float = 0.01,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        check_channels('in_channels', in_channels)
        check_reduction(reduction, in_channels, exact=True)
        check_int('num_layers', num_layers)
        check_probability('attn_drop', attn_drop)
        self.in_channels = in_channels
        self.inner_channels = in_channels // reduction
        self.num_heads = num_heads
        self.layers = nn.ModuleList(
            SelfAttentionLayer(in_channels, self.inner_channels, num_heads,
                               attn_drop, impl) for _ in range(num_layers))
        self.init_std = init_std
        self._init_normal()

    @property
    def impl(self) -> str:
        return self.layers[0].impl

    @impl.setter
    def impl(self, value: str) -> None:
        check_impl(value)
        for layer in self.layers:
            layer.impl = value

    def _init_normal(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=self.init_std)
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """N(0, ``init_std``) dense layers (biases 0), then ``init_cfg``.

        The normal init comes first so that it overrides an enclosing
        module's ``init_cfg`` (e.g. the Xavier init of an FPN's convs) and
        ``init_cfg`` (a checkpoint) has the last word.
        """
        if not self.is_init:
            self._init_normal()
        super().init_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def get_attention(self, x: torch.Tensor, layer: int = -1) -> torch.Tensor:
        """(B, heads, HW, HW) attention of one layer (default: the last one),
        computed on that layer's actual input."""
        index = range(len(self.layers))[layer]
        for i in range(index):
            x = self.layers[i](x)
        return self.layers[index].get_attention(x)


def _bn_affine(norm: Optional[nn.Module], channels: int):
    """(scale, shift) of an eval-mode BatchNorm / frozen affine, or identity."""
    if norm is None:
        return torch.ones(channels), torch.zeros(channels)
    if not isinstance(norm, nn.modules.batchnorm._BatchNorm):
        raise ValueError('init_self_attention_from_bottleneck: fold_norm needs '
                         f'BatchNorm layers, got {type(norm).__name__}')
    if norm.running_var is not None:
        scale = torch.rsqrt(norm.running_var + norm.eps)
        shift = -norm.running_mean * scale
    else:
        scale, shift = torch.ones(channels), torch.zeros(channels)
    if norm.affine:
        scale, shift = scale * norm.weight, shift * norm.weight + norm.bias
    return scale.detach(), shift.detach()


def _get_norm(block: nn.Module, index: int) -> Optional[nn.Module]:
    # mmdet / mmcls: ``norm1`` property; torchvision: ``bn1``.
    return getattr(block, f'norm{index}', None) or getattr(
        block, f'bn{index}', None)


@torch.no_grad()
def init_self_attention_from_bottleneck(
        module: BottleneckSelfAttention,
        bottleneck: Union[nn.Module, Sequence[nn.Module]],
        fold_norm: bool = False) -> BottleneckSelfAttention:
    """Initialise the dense layers from pre-trained ResNet bottleneck(s).

    Lee et al. §3.4 / §4.5: the attention module has the bottleneck shape of a
    ResNet block (C -> C/4 -> C), and "the parameters of fully connected
    layers in the self-attention module can be initialized from the 1x1
    convolutional layer in the bottleneck block". The mapping used here:

    =====================  ==================================================
    self-attention layer   ResNet bottleneck (mmdet ``Bottleneck``)
    =====================  ==================================================
    query  (C -> C/4)      ``conv1`` (1x1, inplanes=C -> planes=C/4)
    key    (C -> C/4)      ``conv1`` (same weights as the query)
    value  (C -> C/4)      ``conv1`` (same weights as the query)
    out    (C/4 -> C)      ``conv3`` (1x1, planes -> planes*4=C)
    (nothing)              ``conv2`` (3x3: the spatial mixing that attention
                           replaces) and the block's residual/ReLUs
    =====================  ==================================================

    Biases are set to 0 (the ResNet convs have none), unless ``fold_norm``:
    then ``norm1`` (eval statistics and affine) is folded into query/key/value
    and ``norm3`` into out, ``w' = w * g / sqrt(var + eps)``,
    ``b' = beta - mean * g / sqrt(var + eps)``. The blocks that fit exactly
    are the non-first blocks of a stage (their ``inplanes`` is 4 * planes),
    e.g. ResNet-50 ``layer4[1]`` / ``layer4[2]`` for a module on C5 (2048 ->
    512 -> 2048) and ``layer3[1:]`` on C4 (1024 -> 256 -> 1024).

    Args:
        module: the :class:`BottleneckSelfAttention` to initialise in place.
        bottleneck: one block (every stacked layer gets it) or one block per
            layer of ``module``.
        fold_norm: fold the BN layers into the dense layers' weights/biases.

    Returns:
        ``module``.
    """
    if isinstance(bottleneck, nn.Module) and hasattr(bottleneck, 'conv1'):
        blocks = [bottleneck] * len(module.layers)
    else:
        blocks = list(bottleneck)
        if len(blocks) != len(module.layers):
            raise ValueError(f'bottleneck: got {len(blocks)} blocks for '
                             f'{len(module.layers)} layers')
    c, inner = module.in_channels, module.inner_channels
    for layer, block in zip(module.layers, blocks):
        conv1, conv3 = getattr(block, 'conv1', None), getattr(block, 'conv3', None)
        if not isinstance(conv1, nn.Conv2d) or not isinstance(conv3, nn.Conv2d):
            raise ValueError('bottleneck must have 1x1 conv1 and conv3 '
                             f'(a ResNet Bottleneck), got {type(block).__name__}')
        if conv1.weight.shape != (inner, c, 1, 1):
            raise ValueError(f'bottleneck.conv1 has weight shape '
                             f'{tuple(conv1.weight.shape)}, the query/key/value '
                             f'need ({inner}, {c}, 1, 1)')
        if conv3.weight.shape != (c, inner, 1, 1):
            raise ValueError(f'bottleneck.conv3 has weight shape '
                             f'{tuple(conv3.weight.shape)}, the output '
                             f'projection needs ({c}, {inner}, 1, 1)')
        if fold_norm:
            s1, b1 = _bn_affine(_get_norm(block, 1), inner)
            s3, b3 = _bn_affine(_get_norm(block, 3), c)
        else:
            s1, b1 = torch.ones(inner), torch.zeros(inner)
            s3, b3 = torch.ones(c), torch.zeros(c)
        w1 = conv1.weight * s1.view(-1, 1, 1, 1).to(conv1.weight)
        for dense in (layer.query, layer.key, layer.value):
            dense.weight.copy_(w1)
            dense.bias.copy_(b1)
        layer.out.weight.copy_(conv3.weight * s3.view(-1, 1, 1, 1).to(conv3.weight))
        layer.out.bias.copy_(b3)
    return module


def _checkpoint_state_dict(checkpoint: str, map_location: str) -> dict:
    """The state dict of a checkpoint file / URL (``torchvision://``,
    ``open-mmlab://``, ``http(s)://`` or a path), loaded as mmengine does."""
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location,
                                            logger='current')
    if not isinstance(ckpt, dict):
        raise ValueError(f'BottleneckAttentionInit: checkpoint {checkpoint!r} '
                         f'holds a {type(ckpt).__name__}, not a state dict')
    state = ckpt.get('state_dict', ckpt)
    # a checkpoint of a wrapped (DDP) model
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in state.items()}


@WEIGHT_INITIALIZERS.register_module(name='BottleneckAttentionInit')
class BottleneckAttentionInit:
    """Initialise a :class:`BottleneckSelfAttention` from ResNet bottleneck
    weights in a checkpoint (Lee et al. §3.4 / §4.5) - the ``init_cfg`` form of
    :func:`init_self_attention_from_bottleneck`.

    Each stacked layer takes the 1x1 ``conv1`` (query, key, value) and
    ``conv3`` (out) of one bottleneck block, found in the checkpoint's state
    dict under ``prefix``: for a ResNet checkpoint (``torchvision://
    resnet50``, ``open-mmlab://detectron2/resnet50_caffe``) ``'layer4.1.'``
    is the second block of c5 (C=2048, the C5 module of SAFPN) and
    ``'layer3.1.'`` the second block of c4 (C=1024, the C4 neck of the C4
    Faster R-CNN); a detector checkpoint needs ``'backbone.layer4.1.'``.
    Only non-first blocks fit (their input has 4 x planes channels).

    Usage, inside the neck's attention config::

        attention_cfg=dict(
            type='BottleneckSelfAttention', reduction=4, num_heads=4,
            init_cfg=dict(type='BottleneckAttentionInit',
                          checkpoint='torchvision://resnet50',
                          prefix='layer4.1.'))

    The weights are loaded when the model's ``init_weights`` runs (the
    runner does it before training), not when the model is built.

    Args:
        checkpoint: path or URL, as for mmengine's ``Pretrained`` init.
        prefix: the block's key prefix (``'layer4.1.'``; a missing final dot
            is added), or one prefix per stacked layer
            (``['layer3.1.', 'layer3.2.']``). A single prefix initialises
            every layer from the same block.
        fold_norm: also fold the block's ``bn1`` into query/key/value and
            ``bn3`` into out (inference statistics and affine; see
            :func:`init_self_attention_from_bottleneck`). The paper copies
            the conv weights only (default ``False``).
        norm_eps: the epsilon of the folded BatchNorms (not stored in
            checkpoints; 1e-5 in torchvision's and mmdet's ResNets).
        map_location: where the checkpoint tensors are loaded.
    """

    def __init__(self,
                 checkpoint: str,
                 prefix: Union[str, Sequence[str]],
                 fold_norm: bool = False,
                 norm_eps: float = 1e-5,
                 map_location: str = 'cpu'):
        if not isinstance(checkpoint, str) or not checkpoint:
            raise ValueError('BottleneckAttentionInit: checkpoint must be a '
                             f'path or URL, got {checkpoint!r}')
        prefixes = [prefix] if isinstance(prefix, str) else list(prefix)
        if not prefixes or not all(isinstance(p, str) and p
                                   for p in prefixes):
            raise ValueError('BottleneckAttentionInit: prefix must be a '
                             'non-empty str or a list of them, got '
                             f'{prefix!r}')
        self.checkpoint = checkpoint
        self.prefixes = [p if p.endswith('.') else p + '.' for p in prefixes]
        self.single = isinstance(prefix, str)
        self.fold_norm = fold_norm
        self.norm_eps = norm_eps
        self.map_location = map_location

    def __call__(self, module: nn.Module) -> None:
        if not isinstance(module, BottleneckSelfAttention):
            raise ValueError(
                'BottleneckAttentionInit initialises a BottleneckSelfAttention '
                f'(give it as that module\'s init_cfg), got '
                f'{type(module).__name__}')
        if not self.single and len(self.prefixes) != len(module.layers):
            raise ValueError(
                f'BottleneckAttentionInit: {len(self.prefixes)} prefixes '
                f'{self.prefixes} for a module of {len(module.layers)} layers '
                '(give one per layer, or one str for all)')
        state = _checkpoint_state_dict(self.checkpoint, self.map_location)
        blocks = [self._block(state, p) for p in self.prefixes]
        try:
            init_self_attention_from_bottleneck(
                module, blocks[0] if self.single else blocks, self.fold_norm)
        except ValueError as e:
            raise ValueError(f'BottleneckAttentionInit: blocks {self.prefixes} '
                             f'of {self.checkpoint!r}: {e}') from e
        if hasattr(module, '_params_init_info'):
            from mmengine.model.weight_init import update_init_info
            update_init_info(module, init_info=self._get_init_info())

    def _block(self, state: dict, prefix: str) -> nn.Module:
        """A stand-in bottleneck holding the checkpoint's conv1 / conv3
        (and bn1 / bn3 with ``fold_norm``) under ``prefix``."""
        norm_keys = ('weight', 'bias', 'running_mean', 'running_var')
        needed = ['conv1.weight', 'conv3.weight']
        if self.fold_norm:
            needed += [f'bn{i}.{k}' for i in (1, 3) for k in norm_keys]
        for key in needed:
            if prefix + key not in state:
                blocks = [k[:-len('conv1.weight')] for k in state
                          if k.endswith('.conv1.weight')]
                if len(blocks) > 8:
                    blocks = blocks[:4] + ['...'] + blocks[-4:]
                raise ValueError(
                    f'BottleneckAttentionInit: {prefix + key!r} is not in '
                    f'checkpoint {self.checkpoint!r} (its blocks with a '
                    f'conv1: {", ".join(blocks) or "none"})')
        block = nn.Module()
        for i in (1, 3):
            weight = state[f'{prefix}conv{i}.weight']
            conv = nn.Conv2d(weight.shape[1], weight.shape[0],
                             tuple(weight.shape[2:]), bias=False)
            conv.weight = nn.Parameter(weight.detach().clone(),
                                       requires_grad=False)
            setattr(block, f'conv{i}', conv)
            if self.fold_norm:
                norm = nn.BatchNorm2d(weight.shape[0], eps=self.norm_eps)
                for k in norm_keys:
                    getattr(norm, k).data.copy_(state[f'{prefix}bn{i}.{k}'])
                setattr(block, f'bn{i}', norm.eval())
        return block

    def _get_init_info(self) -> str:
        return (f'{type(self).__name__}: checkpoint={self.checkpoint}, '
                f'prefix={self.prefixes if not self.single else self.prefixes[0]}, '
                f'fold_norm={self.fold_norm}')
