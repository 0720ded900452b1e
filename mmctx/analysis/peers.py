"""mmctx's blocks beside the peers that compute the same function.

For every comparison the peer is built, its weights are randomised
(:func:`randomise_`), copied into the mmctx block or head through a key map
(:func:`transfer`), and both are run in float64 on one input: the outputs must
agree within 1e-5 (relative, :func:`check_equal`) before anything is timed, so
that a ratio always compares two implementations of one function.

Peers:

* mmcv's bricks ``ContextBlock`` (Cao et al., "GCNet: Non-local Networks Meet
  Squeeze-Excitation Networks and Beyond", released by its authors in mmdet)
  and ``NonLocal2d`` (Wang et al., "Non-local Neural Networks"; all four
  pairwise functions), against ``GlobalContextBlock`` / ``NonLocal2dBlock``;
* mmseg's ``NLHead`` / ``GCHead`` against ``ContextBlockHead`` with the same
  block (the same head layout: conv, block, conv, concat, conv, classifier),
  and the two ``SelfAttentionBlock`` relations of mmseg's ``ISAHead`` with the
  regroup of its ``forward`` (:class:`GroupedISA`) against
  ``InterlacedSparseSelfAttention`` (``variant='official'``, value conv with
  bias as mmseg's);
* the OCNet authors' released SA and ISA blocks (Yuan et al., "OCNet: Object
  Context for Semantic Segmentation"; no package ships them), re-implemented
  here from their description (:class:`ReleasedSelfAttention`,
  :class:`GroupedISA`): value conv without bias;
* timm's ``GlobalContext`` and ``NonLocalAttn`` where timm is installed
  (``requirements-benchmark.txt``); skipped with a note otherwise;
* mmseg's ``DAHead`` (Fu et al., "Dual Attention Network for Scene
  Segmentation") and ``CCHead`` (Huang et al., "CCNet: Criss-Cross Attention
  for Semantic Segmentation"): mmctx has no block or head computing the same
  function, so they are timed as reference points, without a ratio.
"""
import copy
import importlib.util
import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS

from .timing import time_interleaved

__all__ = [
    'Comparison', 'PeerMismatch', 'ReleasedSelfAttention', 'GroupedISA', 'HeadForward',
    'COMPARISONS', 'DEFAULT_SIZES', 'QUICK_SIZES', 'randomise_', 'transfer', 'check_equal',
    'build_pair', 'timm_available', 'select', 'PASSES', 'run_peers', 'best_peer_summary'
]

# The papers' sizes: GCNet / NL on detection features (C4 of Mask R-CNN,
# 1024 x 50 x 68 for an 800 x 1088 image, and 256 x 64 x 64), OCNet's SA / ISA
# and the heads on Cityscapes features (512 x 97 x 97 for 769 x 769 crops at
# stride 8; 512 x 128 x 128 of its Fig. 4).
DEFAULT_SIZES = {
    'nl': [(1, 256, 64, 64), (1, 1024, 50, 68)],
    'oc': [(1, 512, 97, 97), (1, 512, 128, 128)],
}
QUICK_SIZES = {'nl': [(1, 32, 10, 12)], 'oc': [(1, 32, 12, 12)]}
BN = dict(type='BN')


class PeerMismatch(AssertionError):
    """A peer whose output differs from mmctx's with the transferred weights."""


def timm_available() -> bool:
    return importlib.util.find_spec('timm') is not None


# --------------------------------------------------------------------------
# re-implementations of released code that no package ships

class ReleasedSelfAttention(nn.Module):
    """One self-attention of the OCNet authors' released ISA block.

    theta / phi: two (1x1 conv without bias, BN, ReLU) to ``d`` channels;
    delta: a 1x1 conv C -> C, with a bias if ``value_bias`` (the released
    block has none; mmseg's port has one); rho: 1x1 conv without bias, BN,
    ReLU. Logits ``theta^T phi / sqrt(d)``, softmax over the keys, products as
    plain batched matmuls as in the released code.
    """

    def __init__(self, c: int, d: int, value_bias: bool = False) -> None:
        super().__init__()

        def cbr(i, o):
            return [nn.Conv2d(i, o, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.d = d
        self.theta = nn.Sequential(*cbr(c, d), *cbr(d, d))
        self.phi = nn.Sequential(*cbr(c, d), *cbr(d, d))
        self.delta = nn.Conv2d(c, c, 1, bias=value_bias)
        self.rho = nn.Sequential(*cbr(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.theta(x).view(b, self.d, -1).permute(0, 2, 1)
        k = self.phi(x).view(b, self.d, -1)
        v = self.delta(x).view(b, c, -1).permute(0, 2, 1)
        att = torch.softmax(torch.matmul(q, k) * self.d**-0.5, dim=-1)
        y = torch.matmul(att, v).permute(0, 2, 1).contiguous().view(b, c, h, w)
        return self.rho(y)


class GroupedISA(nn.Module):
    """ISA as the released block and mmseg's ``ISAHead.forward`` run it.

    Pad ``pad // 2`` at the top / left (the rest at the bottom / right) to
    multiples of ``down_factor`` (the local group size), the global relation
    on the groups of equal offset inside the ``down_factor`` tiles, the local
    relation on each tile, permute back, crop. The relations are any modules
    mapping (G, C, h, w) to (G, C, h, w): :class:`ReleasedSelfAttention`, or
    the ``global_relation`` / ``local_relation`` of an mmseg ``ISAHead``.
    """

    def __init__(self, global_relation: nn.Module, local_relation: nn.Module,
                 down_factor: Tuple[int, int] = (8, 8)) -> None:
        super().__init__()
        self.global_relation = global_relation
        self.local_relation = local_relation
        self.down_factor = tuple(down_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        lh, lw = self.down_factor
        gh, gw = math.ceil(h / lh), math.ceil(w / lw)
        ph, pw = gh * lh - h, gw * lw - w
        if ph or pw:
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        x = x.view(n, c, gh, lh, gw, lw).permute(0, 3, 5, 1, 2, 4).reshape(-1, c, gh, gw)
        x = self.global_relation(x)
        x = x.view(n, lh, lw, c, gh, gw).permute(0, 4, 5, 3, 1, 2).reshape(-1, c, lh, lw)
        x = self.local_relation(x)
        x = x.view(n, gh, gw, c, lh, lw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, gh * lh, gw * lw)
        if ph or pw:
            x = x[:, :, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
        return x


class HeadForward(nn.Module):
    """A decode head called on one feature map (mmseg heads take a list); of a
    head returning several maps (``DAHead``: PAM + CAM, PAM, CAM) the first."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head([x])
        return out[0] if isinstance(out, (tuple, list)) else out


# --------------------------------------------------------------------------
# weights

def randomise_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere (zero-initialised output convs included), BN
    statistics too, scaled so activations stay of order one."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data = 1 + 0.2 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
            m.running_mean = 0.2 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
            continue
        for name, p in m.named_parameters(recurse=False):
            if name == 'weight' and p.dim() > 1:
                fan_in = p[0].numel()
                p.data = torch.randn(p.shape, generator=g) * 1.5 / fan_in**0.5
            elif name == 'weight':  # LayerNorm scales
                p.data = 1 + 0.2 * torch.randn(p.shape, generator=g)
            else:
                p.data = 0.2 * torch.randn(p.shape, generator=g)
    return module


def transfer(src: nn.Module, dst: nn.Module, rename: Callable[[str], Optional[str]],
             convert: Optional[Callable[[Dict], Dict]] = None) -> None:
    """Copy ``src``'s state into ``dst``: ``rename(src_key)`` names the ``dst``
    key (None: the entry has no counterpart, e.g. a bias that softmax cancels).
    ``convert`` first rewrites the source state (a reparametrisation giving
    the same function, e.g. a logit scale folded into a conv). Every ``dst``
    entry must be filled, with the same number of elements (reshaped to
    ``dst``'s shape)."""
    target = dst.state_dict()
    new = {}
    state = dict(src.state_dict())
    if convert is not None:
        state = convert(state)
    for key, value in state.items():
        name = rename(key)
        if name is None or key.endswith('num_batches_tracked'):
            continue
        if name not in target:
            raise KeyError(f'transfer: {key!r} -> {name!r}, not a key of {type(dst).__name__}')
        if target[name].numel() != value.numel():
            raise ValueError(f'transfer: {key!r} {tuple(value.shape)} -> {name!r} '
                             f'{tuple(target[name].shape)}')
        new[name] = value.reshape(target[name].shape).clone()
    missing = [k for k in target if k not in new and not k.endswith('num_batches_tracked')]
    if missing:
        raise KeyError(f'transfer: {type(dst).__name__} entries not filled: {missing}')
    for k in target:
        new.setdefault(k, target[k])
    dst.load_state_dict(new)


def check_equal(ours: nn.Module, peer: nn.Module, x: torch.Tensor, rtol: float = 1e-5) -> float:
    """Both modules in float64 on ``x``: raise :class:`PeerMismatch` unless the
    outputs agree within ``rtol`` relative to the output's scale; return the
    relative difference. The modules are restored to their dtype afterwards."""
    dtypes = [next(m.parameters()).dtype for m in (ours, peer)]
    try:
        with torch.no_grad():
            a = ours.double()(x.double())
            b = peer.double()(x.double())
    finally:
        ours.to(dtypes[0])
        peer.to(dtypes[1])
    if a.shape != b.shape:
        raise PeerMismatch(f'output shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}')
    scale = b.abs().max().item()
    if not scale > 0 or b.std().item() < 1e-6 * scale:
        raise PeerMismatch('the peer output is constant: the check would prove nothing')
    rel = (a - b).abs().max().item() / scale
    if not rel <= rtol:
        raise PeerMismatch(f'outputs differ by {rel:.3g} (relative) > {rtol:g}')
    return rel


# --------------------------------------------------------------------------
# key maps

def _mmcv_nl_key(key: str) -> str:
    # mmcv: g.conv.*, theta.conv.*, phi.conv.*, concat_project.conv.*, conv_out.conv.*
    # (g / phi are Sequential(conv, pool) with sub_sample: g.0.conv.*)
    if key.startswith('conv_out.'):
        return key
    return key.replace('.0.conv.', '.').replace('.conv.', '.')


def _mmcv_gc_key(key: str) -> Optional[str]:
    if key == 'conv_mask.bias':
        return None  # one constant on every logit: softmax cancels it
    return key.replace('channel_add_conv.', 'channel_add.')


def _prefixed(prefix_map: Dict[str, str], inner: Callable[[str], Optional[str]] = None):
    def rename(key):
        for old, new in prefix_map.items():
            if key.startswith(old):
                rest = key[len(old):]
                rest = inner(rest) if inner else rest
                return None if rest is None else new + rest
        return key
    return rename


_SA_KEYS = {'theta.0.': 'query.0.conv.', 'theta.1.': 'query.0.bn.', 'theta.3.': 'query.1.conv.',
            'theta.4.': 'query.1.bn.', 'phi.0.': 'key.0.conv.', 'phi.1.': 'key.0.bn.',
            'phi.3.': 'key.1.conv.', 'phi.4.': 'key.1.bn.', 'delta.': 'value.',
            'rho.0.': 'out.conv.', 'rho.1.': 'out.bn.'}
_MMSEG_SA_KEYS = {'query_project.': 'query.', 'key_project.': 'key.',
                  'value_project.': 'value.', 'output_project.': 'out.'}


def _released_sa_key(key: str) -> str:
    return _prefixed(_SA_KEYS)(key)


def _isa_key(relation_key: Callable[[str], str]):
    def rename(key):
        stage, rest = key.split('.', 1)
        return f'{stage}.{relation_key(rest)}'
    return rename


def _timm_nl_convert(state: Dict) -> Dict:
    """timm NonLocalAttn -> NonLocal2dBlock(reduction=8, norm_cfg=BN).

    timm scales the logits by C^-1/2, ours by (C/8)^-1/2: theta (t) takes
    the factor 8^-1/2. timm's z conv has a bias, ours (conv, BN) none: the
    bias goes into the BN running mean."""
    state = dict(state)
    for k in ('t.weight', 't.bias'):
        state[k] = state[k] * 8**-0.5
    state['norm.running_mean'] = state['norm.running_mean'] - state.pop('z.bias')
    return state


def _timm_nl_key(key: str) -> str:
    head, rest = key.split('.', 1)
    return {'t': 'theta.', 'p': 'phi.', 'g': 'g.', 'z': 'conv_out.conv.',
            'norm': 'conv_out.bn.'}[head] + rest


def _timm_gc_key(key: str) -> Optional[str]:
    # timm GlobalContext: conv_attn, mlp_add.fc1 / norm / fc2 (ConvMlp, LayerNorm2d)
    if key == 'conv_attn.bias':
        return None
    return (key.replace('conv_attn.', 'conv_mask.').replace('mlp_add.fc1.', 'channel_add.0.')
            .replace('mlp_add.norm.', 'channel_add.1.').replace('mlp_add.fc2.', 'channel_add.3.'))


# --------------------------------------------------------------------------
# the comparisons

@dataclass
class Comparison:
    """One mmctx block or head beside one peer computing the same function.

    ``build_ours`` / ``build_peer`` take the input channels; ``rename`` maps a
    peer state-dict key to ours (None for reference points: ``build_ours`` is
    None and no ratio is given). ``family`` picks the sizes
    (:data:`DEFAULT_SIZES`); ``requires`` names an optional package;
    ``convert`` rewrites the peer's state before the copy (:func:`transfer`);
    above ``max_tokens`` positions the peer is skipped for ``skip_reason``.
    """
    block: str
    peer: str
    family: str
    build_peer: Callable[[int], nn.Module]
    build_ours: Optional[Callable[[int], nn.Module]] = None
    rename: Optional[Callable[[str], Optional[str]]] = None
    requires: Optional[str] = None
    convert: Optional[Callable[[Dict], Dict]] = None
    note: str = ''
    check_hw: Tuple[int, int] = (10, 12)
    max_tokens: Optional[int] = None
    skip_reason: str = ''


def _ours(cfg: dict, value_channels_c: bool = False):
    def build(c):
        extra = dict(value_channels=c) if value_channels_c else {}
        return MODELS.build(dict(cfg, in_channels=c, **extra))
    return build


def _mmcv_nl(mode):
    def build(c):
        from mmcv.cnn import NonLocal2d
        return NonLocal2d(c, mode=mode)
    return build


def _mmcv_gc(c):
    from mmcv.cnn import ContextBlock
    return ContextBlock(c, 1 / 16)


def _head(type_, **kwargs):
    def build(c):
        return HeadForward(MODELS.build(dict(type=type_, in_channels=c, channels=c // 4,
                                             num_classes=19, norm_cfg=BN, **kwargs)))
    return build


def _mmseg_isa(c):
    from mmseg.models.decode_heads.isa_head import SelfAttentionBlock
    act = dict(type='ReLU')
    return GroupedISA(SelfAttentionBlock(c, c // 2, None, BN, act),
                      SelfAttentionBlock(c, c // 2, None, BN, act))


def _released_isa(c):
    return GroupedISA(ReleasedSelfAttention(c, c // 2), ReleasedSelfAttention(c, c // 2))


def _mmseg_sa(c):
    from mmseg.models.decode_heads.isa_head import SelfAttentionBlock
    return SelfAttentionBlock(c, c // 2, None, BN, dict(type='ReLU'))


def _timm_nl(c):
    from timm.layers import NonLocalAttn
    # C / 8 channels, as ours: timm's default rounds C / 8 up to a multiple of 8
    # (the same at the papers' C = 256 / 1024, not at the quick sizes' C = 32)
    return NonLocalAttn(c, use_scale=True, rd_channels=c // 8)


def _timm_gc(c):
    from timm.layers import GlobalContext
    block = GlobalContext(c, use_attn=True, fuse_add=True, fuse_scale=False, init_last_zero=True,
                          rd_ratio=1 / 16, rd_divisor=1)
    # timm's LayerNorm2d defaults to eps 1e-6; GCNet's released block (mmcv's
    # ContextBlock) and ours use nn.LayerNorm's 1e-5. Over the C/16 bottleneck
    # channels the two differ by ~1e-4 (C = 32): the same function only at one
    # eps. The constant costs no time.
    block.mlp_add.norm.eps = 1e-5
    return block


_AUTO = dict(impl='auto')
_ISA = dict(type='InterlacedSparseSelfAttention', groups=(8, 8), variant='official',
            key_channels=None, **_AUTO)
_SA = dict(type='SelfAttention2d', out_norm=True, **_AUTO)
_HEAD_NOTE = 'in_channels = C, channels = C / 4, BN, 19 classes'


def _comparisons() -> List[Comparison]:
    out = [
        Comparison('GC (r=16)', 'mmcv ContextBlock', 'nl', _mmcv_gc,
                   _ours(dict(type='GlobalContextBlock', ratio=16)), _mmcv_gc_key),
        Comparison('GC (r=16)', 'timm GlobalContext', 'nl', _timm_gc,
                   _ours(dict(type='GlobalContextBlock', ratio=16)), _timm_gc_key,
                   requires='timm', note="timm's LayerNorm eps 1e-6 set to 1e-5, mmcv's"),
    ]
    for mode in ('embedded_gaussian', 'gaussian', 'dot_product', 'concatenation'):
        extra = {}
        if mode == 'concatenation':  # 46 s for one forward at 48 x 48, C = 256 (loaded CPU)
            extra = dict(max_tokens=48 * 48, skip_reason=(
                "mmcv's concatenation mode forms an (N, N, 2C') tensor: "
                '17 GB at 64x64 (C=256), 47 GB at 50x68 (C=1024)'))
        out.append(Comparison(f'NL ({mode})', 'mmcv NonLocal2d', 'nl', _mmcv_nl(mode),
                              _ours(dict(type='NonLocal2dBlock', mode=mode, **_AUTO)),
                              _mmcv_nl_key, **extra))
    out.append(Comparison('NL (embedded_gaussian, r=8, BN)', 'timm NonLocalAttn', 'nl',
                          _timm_nl,
                          _ours(dict(type='NonLocal2dBlock', reduction=8, norm_cfg=BN, **_AUTO)),
                          _timm_nl_key, requires='timm', convert=_timm_nl_convert,
                          note="timm's logit scale C^-1/2 folded into theta"))
    out += [
        Comparison('NL head (embedded_gaussian)', 'mmseg NLHead', 'oc',
                   _head('mmseg.NLHead'),
                   _head('mmseg.ContextBlockHead',
                         context_cfg=dict(type='NonLocal2dBlock', norm_cfg=BN, **_AUTO)),
                   _prefixed({'head.nl_block.': 'head.context_block.'}, _mmcv_nl_key),
                   note=_HEAD_NOTE),
        Comparison('GC head (r=4)', 'mmseg GCHead', 'oc', _head('mmseg.GCHead'),
                   _head('mmseg.ContextBlockHead',
                         context_cfg=dict(type='GlobalContextBlock', ratio=4)),
                   _prefixed({'head.gc_block.': 'head.context_block.'}, _mmcv_gc_key),
                   note=_HEAD_NOTE),
        Comparison('SA (key C/2, value C)', 'mmseg SelfAttentionBlock (ISAHead)', 'oc',
                   _mmseg_sa, _ours(dict(_SA, value_bias=True), value_channels_c=True),
                   _prefixed(_MMSEG_SA_KEYS), check_hw=(9, 11)),
        Comparison('SA (key C/2, value C)', 'OCNet released SA (re-implemented)', 'oc',
                   lambda c: ReleasedSelfAttention(c, c // 2),
                   _ours(dict(_SA, value_bias=False), value_channels_c=True), _released_sa_key,
                   check_hw=(9, 11)),
        Comparison('ISA (8x8, official)', 'mmseg ISAHead relations', 'oc', _mmseg_isa,
                   _ours(dict(_ISA, value_bias=True)), _isa_key(_prefixed(_MMSEG_SA_KEYS)),
                   note="ISAHead's two SelfAttentionBlocks and the regroup of its forward",
                   check_hw=(19, 21)),
        Comparison('ISA (8x8, official)', 'OCNet released ISA (re-implemented)', 'oc',
                   _released_isa, _ours(dict(_ISA, value_bias=False)),
                   _isa_key(_released_sa_key), check_hw=(19, 21)),
        Comparison('DA head', 'mmseg DAHead', 'oc', _head('mmseg.DAHead', pam_channels=64),
                   note='reference point: mmctx has no dual-attention block or head'),
        Comparison('CC head', 'mmseg CCHead', 'oc', _head('mmseg.CCHead', recurrence=2),
                   note='reference point: mmctx has no criss-cross block or head'),
    ]
    return out


COMPARISONS = _comparisons()


def build_pair(cmp: Comparison, in_channels: int, seed: int = 0,
               check: bool = True) -> Tuple[Optional[nn.Module], nn.Module, Optional[float]]:
    """(ours, peer, relative difference) for ``cmp`` at ``in_channels``, eval mode, float32.

    The peer is randomised, its weights copied into ours, and (``check``) both
    are compared in float64 on a (1, C, *cmp.check_hw) input. Reference
    points return ``ours`` None and no difference.
    """
    torch.manual_seed(seed)
    peer = randomise_(cmp.build_peer(in_channels), seed).eval()
    if cmp.build_ours is None:
        return None, peer, None
    ours = cmp.build_ours(in_channels).eval()
    transfer(peer, ours, cmp.rename, cmp.convert)
    rel = None
    if check:
        g = torch.Generator().manual_seed(seed + 1)
        x = torch.randn(1, in_channels, *cmp.check_hw, generator=g)
        rel = check_equal(ours, peer, x)
    return ours, peer, rel


def select(only: Optional[Sequence[str]] = None) -> Tuple[List[Comparison], List[str]]:
    """The comparisons to run (names containing one of ``only``), and notes on
    the skipped ones (a missing optional package)."""
    chosen, notes = [], []
    for cmp in COMPARISONS:
        if only and not any(o.lower() in f'{cmp.block} {cmp.peer}'.lower() for o in only):
            continue
        if cmp.requires == 'timm' and not timm_available():
            notes.append(f'{cmp.peer} skipped: timm is not installed '
                         '(pip install -r requirements-benchmark.txt)')
            continue
        chosen.append(cmp)
    return chosen, notes


# --------------------------------------------------------------------------
# timing and memory, interleaved in one process

PASSES = ('forward', 'forward_backward')


def _runner(module: nn.Module, x: torch.Tensor, pass_: str) -> Callable[[], None]:
    if pass_ == 'forward':
        def run():
            with torch.no_grad():
                module(x)
    else:
        # the input needs a gradient, as a block's input does inside a network
        # (its backward then forms d out / d x, which a leaf input skips)
        x = x.detach().requires_grad_(True)

        def run():
            module(x).sum().backward()
            # dropped here, not at the start of the next call: a measured call
            # then frees no gradient of an earlier one, which the CPU profiler
            # records for some blocks and not others (up to one input-sized
            # gradient, e.g. 179 vs 147 MiB for the GC head at 128 x 128)
            module.zero_grad(set_to_none=True)
            x.grad = None
    return run


def _graph_runner(module: nn.Module, x: torch.Tensor, pass_: str) -> Callable[[], None]:
    """:func:`_runner`'s call replayed from a CUDA graph: the same kernels with
    none of the host's work per op (Python, dispatch, launches), so its time is
    the kernels' alone. Captured on a copy of ``module``, since
    ``torch.cuda.make_graphed_callables`` replaces the forward of the module it
    graphs (the eager runs must stay eager).
    """
    module = copy.deepcopy(module)
    if pass_ == 'forward':
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.no_grad():
            for _ in range(3):  # warm-up off the default stream, as capture asks
                module(x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.no_grad():
            module(x)
        return graph.replay
    x = x.detach().requires_grad_(True)
    graphed = torch.cuda.make_graphed_callables(module, (x, ))

    def run():
        graphed(x).sum().backward()
        graphed.zero_grad(set_to_none=True)
        x.grad = None
    return run


def _cuda_graphs_possible(device) -> bool:
    return torch.device(device).type == 'cuda'


def _graph_times(models, x, pass_, repeat, warmup, device) -> Tuple[List, str]:
    """Median replay time of each model's call from a CUDA graph, and ''; or
    Nones and why a capture failed (an op that waits for the device, say)."""
    try:
        runs = [_graph_runner(m, x, pass_) for m in models]
        return time_interleaved(runs, repeat, warmup, device), ''
    except RuntimeError as err:
        return [None] * len(models), f'no CUDA graph: {str(err).splitlines()[0][:120]}'


def _ours_and_peer(values: Sequence, no_ours: bool, no_peer: bool) -> List:
    """The figures of the calls that ran as (ours, peer), None for the one
    that did not (a reference point has no mmctx block; a failing peer is not
    timed)."""
    return [None] * no_ours + list(values) + [None] * no_peer


def _shape_str(shape) -> str:
    return 'x'.join(map(str, shape))


def run_peers(comparisons: Sequence[Comparison], sizes: Optional[Dict[str, list]] = None,
              threads: Sequence[int] = (1, ), passes: Sequence[str] = PASSES,
              repeat: int = 5, warmup: int = 1, device: str = 'cpu', memory: bool = True,
              graphs: bool = False, log: Callable[[str], None] = print) -> List[Dict]:
    """Time (and measure the peak memory of) mmctx and each peer, interleaved.

    For every comparison, size of its family (``sizes``, default
    :data:`DEFAULT_SIZES`), pass and thread count: one row with ``ours_ms`` /
    ``peer_ms`` (medians of ``repeat`` interleaved runs), ``ours_mb`` /
    ``peer_mb`` (:func:`mmctx.analysis.memory.peak_memory`), the ratios
    ``time_ratio`` = ours_ms / peer_ms and ``memory_ratio`` = ours_mb /
    peer_mb (None for reference points), and ``check_rel``, the relative
    difference of the float64 outputs (checked <= 1e-5 before timing); on
    CUDA also ``ours_host_ms`` / ``peer_host_ms``, the medians of the time
    until the call returned, before the device is synchronised (the host's
    share: :func:`mmctx.analysis.timing.time_interleaved`); with ``graphs``
    (CUDA only) also ``ours_graph_ms`` / ``peer_graph_ms``, the medians of
    the call replayed from a CUDA graph (the kernels' time alone; measured
    after the eager figures, on copies of the modules).
    A peer that fails the check (or the weight transfer) is refused: its rows
    carry the reason in ``note`` and no figures.
    """
    from .memory import peak_memory
    if graphs and not _cuda_graphs_possible(device):
        raise ValueError(f'run_peers: graphs=True needs a CUDA device, got device={device!r} '
                         '(CUDA graphs replay CUDA kernels)')
    sizes = DEFAULT_SIZES if sizes is None else sizes
    rows = []
    saved_threads = torch.get_num_threads()
    try:
        for cmp in comparisons:
            for shape in sizes[cmp.family]:
                if cmp.max_tokens is not None and shape[2] * shape[3] > cmp.max_tokens:
                    for n_threads in threads:
                        for pass_ in passes:
                            rows.append(_refused(cmp, shape, pass_, n_threads, device,
                                                 cmp.skip_reason, 'skipped'))
                    log(f"{cmp.block} | {cmp.peer} | {_shape_str(shape)} skipped: "
                        f'{cmp.skip_reason}')
                    continue
                try:
                    ours, peer, rel = build_pair(cmp, shape[1])
                except (PeerMismatch, KeyError, ValueError) as err:
                    # refused: not the same function (or not the same weights)
                    for n_threads in threads:
                        for pass_ in passes:
                            rows.append(_refused(cmp, shape, pass_, n_threads, device, err))
                            log(f"{cmp.block} | {cmp.peer} | refused: {rows[-1]['note']}")
                    continue
                models = [m.to(device) for m in (ours, peer) if m is not None]
                g = torch.Generator().manual_seed(2)
                x = torch.randn(*shape, generator=g).to(device)
                for n_threads in threads:
                    torch.set_num_threads(n_threads)
                    for pass_ in passes:
                        runs = [_runner(m, x, pass_) for m in models]
                        failed = _peer_failure(runs[-1])
                        if failed:  # time ours alone, say why the peer has no figure
                            runs = runs[:-1]
                        times, host = time_interleaved(runs, repeat, warmup, device,
                                                       host=True)
                        mems = ([peak_memory(run, device) / 2**20 for run in runs]
                                if memory else [None] * len(runs))
                        times, host, mems = (_ours_and_peer(v, ours is None, bool(failed))
                                             for v in (times, host, mems))
                        row = dict(block=cmp.block, peer=cmp.peer, input=_shape_str(shape),
                                   pass_=pass_, threads=n_threads, device=str(device),
                                   ours_ms=_ms(times[0]), peer_ms=_ms(times[1]),
                                   time_ratio=_ratio(times[0], times[1]),
                                   ours_mb=mems[0], peer_mb=mems[1],
                                   memory_ratio=_ratio(mems[0], mems[1]),
                                   check_rel=rel, note=failed or cmp.note)
                        if torch.device(device).type == 'cuda':
                            # the host's share: time_interleaved's docstring
                            row.update(ours_host_ms=_ms(host[0]), peer_host_ms=_ms(host[1]))
                        if graphs:
                            replays, why = _graph_times(models[:len(runs)], x, pass_,
                                                        repeat, warmup, device)
                            replays = _ours_and_peer(replays, ours is None, bool(failed))
                            row.update(ours_graph_ms=_ms(replays[0]),
                                       peer_graph_ms=_ms(replays[1]))
                            if why:
                                row['note'] = '; '.join(n for n in (row['note'], why) if n)
                        row['pass'] = row.pop('pass_')
                        rows.append(row)
                        log(_progress(row))
                del models, ours, peer
    finally:
        torch.set_num_threads(saved_threads)
    return rows


def _refused(cmp, shape, pass_, n_threads, device, err, word: str = 'refused') -> Dict:
    if isinstance(err, str):
        note = f'{word}: {err}'
    else:
        text = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        note = f'{word} ({type(err).__name__}): {text}'
    return {'block': cmp.block, 'peer': cmp.peer, 'input': _shape_str(shape), 'pass': pass_,
            'threads': n_threads, 'device': str(device), 'ours_ms': None, 'peer_ms': None,
            'time_ratio': None, 'ours_mb': None, 'peer_mb': None, 'memory_ratio': None,
            'check_rel': None, 'note': note}


def _peer_failure(run: Callable[[], None]) -> str:
    """'' if the peer's call runs, else why not (e.g. mmcv NonLocal2d's
    concatenation mode, whose in-place division breaks its own backward)."""
    try:
        run()
    except RuntimeError as err:
        return f'peer fails: {str(err).splitlines()[0][:160]}'
    return ''


def _ms(seconds):
    return None if seconds is None else seconds * 1e3


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _progress(row: Dict) -> str:
    ratio = row['time_ratio']
    text = f"{row['block']} | {row['peer']} | {row['input']} | {row['pass']} | " \
           f"{row['threads']} thr: peer " + \
        ('-' if row['peer_ms'] is None else f"{row['peer_ms']:.1f} ms")
    if row['ours_ms'] is not None:
        text += f", mmctx {row['ours_ms']:.1f} ms"
    if ratio is not None:
        text += f' ({ratio:.2f}x)'
    return text


def best_peer_summary(rows: Sequence[Dict]) -> List[Dict]:
    """Per (block, input, pass, threads): mmctx against its fastest peer
    (time) and its leanest peer (memory); reference points left out."""
    groups: Dict[tuple, List[Dict]] = {}
    for row in rows:
        if row['time_ratio'] is None:
            continue
        key = (row['block'], row['input'], row['pass'], row['threads'])
        groups.setdefault(key, []).append(row)
    out = []
    for (block, shape, pass_, n), group in groups.items():
        fast = min(group, key=lambda r: r['peer_ms'])
        summary = dict(block=block, input=shape, pass_=pass_, threads=n,
                       best_peer_time=fast['peer'], time_ratio=fast['time_ratio'])
        with_mem = [r for r in group if r['memory_ratio'] is not None]
        if with_mem:
            lean = min(with_mem, key=lambda r: r['peer_mb'])
            summary.update(best_peer_memory=lean['peer'], memory_ratio=lean['memory_ratio'])
        summary['pass'] = summary.pop('pass_')
        out.append(summary)
    return out
