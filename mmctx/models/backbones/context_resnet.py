"""ResNet with context plugins at chosen blocks and after the residual sum.

mmdet's :class:`~mmdet.models.backbones.ResNet` inserts a plugin after
conv1, conv2 or conv3 of *every* bottleneck of the selected stages. The
papers also place single blocks elsewhere:

* Cao et al. (GCNet) Table 5a: one block "right before the last residual block
  of c4"; Table 5b "afterAdd": the block is applied to the residual block's
  output, after the sum with the shortcut (and its ReLU);
* Levi & Ullman (ENL) Tables 2 and 4 "+1NL, BU" and Yuan et al. (OCNet) §4.5 /
  Table 12: one non-local (or ISA) block before the last block of res4, as
  in Wang et al.'s non-local Mask R-CNN.

:class:`ContextResNet` takes mmdet's ``plugins`` list with two additions:

* ``position='after_add'`` (besides ``'after_conv1'``, ``'after_conv2'``,
  ``'after_conv3'``): the plugin maps the block's output, ``planes * 4``
  channels, i.e. it sits between this block and the next one;
* ``blocks``: indices into the blocks of each selected stage (negative
  indices count from the end); default all blocks. ``stages=(False, False,
  True, False), position='after_add', blocks=(-2,)`` is "right before the
  last residual block of c4" for every depth (``layer3[-2]``).

The plain ResNet's modules and state_dict keys are unchanged, so ImageNet
checkpoints load; a plugin's parameters live under its block, e.g.
``layer3.4.nl.*`` for a ``NonLocal2dBlock`` in ResNet-50.
"""
from numbers import Integral
from typing import List, Optional, Sequence

import torch.utils.checkpoint as cp
from mmdet.models.backbones import ResNet
from mmdet.models.backbones.resnet import Bottleneck
from mmdet.models.layers import ResLayer
from mmdet.registry import MODELS

__all__ = ['ContextBottleneck', 'ContextResNet']

CONV_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')
POSITIONS = CONV_POSITIONS + ('after_add', )
PLUGIN_KEYS = ('cfg', 'position', 'stages', 'blocks')


class ContextBottleneck(Bottleneck):
    """mmdet's Bottleneck plus plugins applied to its output (``'after_add'``).

    ``plugins`` entries with an ``after_conv*`` position go to mmdet's
    Bottleneck unchanged; ``'after_add'`` plugins (``planes * expansion``
    input channels) map the output of the block, after the residual sum and
    its ReLU, in the order they are listed. With ``with_cp`` they are
    checkpointed too.
    """

    def __init__(self, *args, plugins: Optional[List[dict]] = None, **kwargs):
        conv_plugins = after_add = None
        if plugins is not None:
            conv_plugins = [p for p in plugins if p['position'] != 'after_add']
            after_add = [p['cfg'] for p in plugins if p['position'] == 'after_add']
        super().__init__(*args, plugins=conv_plugins, **kwargs)
        self.after_add_plugin_names = self.make_block_plugins(
            self.planes * self.expansion, after_add or [])

    def forward(self, x):
        out = super().forward(x)
        if not self.after_add_plugin_names:
            return out

        def _plugins(t):
            return self.forward_plugin(t, self.after_add_plugin_names)

        if self.with_cp and out.requires_grad:
            return cp.checkpoint(_plugins, out, use_reentrant=False)
        return _plugins(out)


class _StageBlocks:
    """Block factory for one ``ResLayer``: the i-th call builds block i with its own plugins.

    ``ResLayer`` builds a stage's blocks in order through ``block(**kwargs)``
    with the same kwargs for all; this hands each one the plugin list
    selected for its index.
    """

    def __init__(self, block, plugins_per_block: List[Optional[List[dict]]]):
        self.block = block
        self.expansion = block.expansion
        self._plugins = list(plugins_per_block)
        self._built = 0

    def __call__(self, **kwargs):
        plugins = self._plugins[self._built]
        self._built += 1
        return self.block(plugins=plugins, **kwargs)

    def check_all_built(self) -> None:
        if self._built != len(self._plugins):
            raise RuntimeError(f'ResLayer built {self._built} blocks, expected '
                               f'{len(self._plugins)}')


def _check_plugins(plugins, stage_blocks: Sequence[int]) -> None:
    """ValueError naming the plugin, field and sizes for any malformed entry."""
    if not isinstance(plugins, (list, tuple)):
        raise ValueError(f'plugins must be a list of dicts, got {type(plugins).__name__}')
    num_stages = len(stage_blocks)
    for k, plugin in enumerate(plugins):
        where = f'plugins[{k}]'
        if not isinstance(plugin, dict) or 'cfg' not in plugin or 'position' not in plugin:
            raise ValueError(f"{where} must be a dict with 'cfg' and 'position', got {plugin!r}")
        unknown = sorted(set(plugin) - set(PLUGIN_KEYS))
        if unknown:
            raise ValueError(f'{where} has unknown keys {unknown}; allowed: {PLUGIN_KEYS}')
        if plugin['position'] not in POSITIONS:
            raise ValueError(f"{where}: position {plugin['position']!r} is not one of "
                             f'{POSITIONS}')
        stages = plugin.get('stages')
        if stages is None:
            selected = list(range(num_stages))
        else:
            if len(stages) != num_stages:
                raise ValueError(f'{where}: stages has {len(stages)} entries, the ResNet '
                                 f'has num_stages={num_stages}')
            selected = [i for i, s in enumerate(stages) if s]
            if not selected:
                raise ValueError(f'{where}: stages={tuple(stages)} selects no stage')
        blocks = plugin.get('blocks')
        if blocks is None:
            continue
        if (not isinstance(blocks, (list, tuple)) or not blocks or not all(
                isinstance(b, Integral) and not isinstance(b, bool) for b in blocks)):
            raise ValueError(f'{where}: blocks must be a non-empty tuple of block '
                             f'indices, got {blocks!r}')
        for i in selected:
            n = stage_blocks[i]
            for b in blocks:
                if not -n <= b < n:
                    raise ValueError(f'{where}: block index {b} is out of range for stage '
                                     f'{i} (layer{i + 1}), which has {n} blocks')
            if len({b % n for b in blocks}) != len(blocks):
                raise ValueError(f'{where}: blocks={tuple(blocks)} name the same block of '
                                 f'stage {i} (layer{i + 1}, {n} blocks) twice')


@MODELS.register_module()
class ContextResNet(ResNet):
    """mmdet ResNet (Bottleneck depths) whose plugins take ``blocks`` and ``'after_add'``.

    Args:
        depth: 50, 101 or 152 (Bottleneck ResNets; 18 / 34 raise).
        plugins: mmdet's plugin list; each entry ``dict(cfg=..., position=...,
            stages=None, blocks=None)`` with ``position`` in
            ``('after_conv1', 'after_conv2', 'after_conv3', 'after_add')`` and
            ``blocks`` a tuple of (possibly negative) block indices of every
            selected stage. A plugin's input channels are ``planes`` after
            conv1 / conv2 and ``planes * 4`` after conv3 / the add. Without
            ``blocks`` and with an ``after_conv*`` position a plugin is built
            and applied exactly as by mmdet's ResNet.
        **kwargs: every other :class:`mmdet.models.backbones.ResNet` argument.
    """

    arch_settings = {
        50: (ContextBottleneck, (3, 4, 6, 3)),
        101: (ContextBottleneck, (3, 4, 23, 3)),
        152: (ContextBottleneck, (3, 8, 36, 3)),
    }

    def __init__(self, depth: int, plugins: Optional[List[dict]] = None,
                 num_stages: int = 4, zero_init_residual: bool = True,
                 pretrained=None, init_cfg=None, **kwargs):
        if depth not in self.arch_settings:
            kind = ' (a BasicBlock ResNet)' if depth in ResNet.arch_settings else ''
            raise ValueError(f'ContextResNet supports the Bottleneck depths '
                             f'{tuple(self.arch_settings)}, got depth={depth!r}{kind}')
        if not isinstance(num_stages, int) or not 1 <= num_stages <= 4:
            raise ValueError(f'num_stages must be in 1..4, got {num_stages!r}')
        if plugins is not None:
            _check_plugins(plugins, self.arch_settings[depth][1][:num_stages])
        # mmdet zero-inits norm3 of each block when ``block is Bottleneck``;
        # our blocks are a subclass, so that condition is re-created here.
        self._zero_init_norm3 = (zero_init_residual and pretrained is None
                                 and init_cfg is None)
        super().__init__(depth=depth, plugins=plugins, num_stages=num_stages,
                         zero_init_residual=zero_init_residual,
                         pretrained=pretrained, init_cfg=init_cfg, **kwargs)

    def make_res_layer(self, **kwargs):
        """One stage, each block with the plugins whose ``blocks`` include it."""
        plugins = kwargs.pop('plugins')
        num_blocks = kwargs['num_blocks']
        if kwargs.get('init_cfg') is None and self._zero_init_norm3:
            kwargs['init_cfg'] = dict(type='Constant', val=0, override=dict(name='norm3'))
        if plugins is None:
            per_block = [None] * num_blocks
        else:
            per_block = [[] for _ in range(num_blocks)]
            for plugin in plugins:
                plugin = dict(plugin)
                blocks = plugin.pop('blocks', None)
                chosen = (range(num_blocks) if blocks is None
                          else sorted(b % num_blocks for b in blocks))
                for i in chosen:
                    per_block[i].append(plugin)
        factory = _StageBlocks(kwargs.pop('block'), per_block)
        layer = ResLayer(block=factory, **kwargs)
        factory.check_all_built()
        layer.block = factory.block
        return layer
