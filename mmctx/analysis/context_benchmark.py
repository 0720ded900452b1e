"""The context benchmark: does a paper's module let the network use evidence
beyond its receptive field?

The data are the scenes of ``tools/dataset_converters/make_context_shapes.py``:
the "key" scenes, objects drawn alike, their class (one of three) given only
by the colour of a small key placed farther from every object than the
baseline network can see; and, for the segmentation heads of Yuan et al. and
Cao et al. and the RetinaNet rows of Woo et al. and Lee et al. (groups
"(twins)"), the "twins" scenes, grey discs and squares
that take the class of the coloured exemplar of their shape, far away (a
twin must find its like: the evidence differs per object). Each row trains
one paper's configuration, shrunk to a CPU (the paper config, then its
fragment, ``configs/context_benchmark/_base_/seg_key_96.py``, ``det_key_96.py``
(RetinaNet), ``mask-rcnn_key_96.py`` or ``faster-rcnn_key_128.py``, merged
over it: data, backbone width and depth, schedule; ``ITERS``: 600 iterations
for segmentation, 1200 for detection), and scores the part of the task that
only context can solve:

- segmentation: ``context acc`` = the fraction of the context-dependent
  ground-truth object pixels (every object of a key scene, the twins of a
  twins scene: the scenes' context maps) whose highest logit among the three
  object classes is the right one (the class given that it is an object;
  chance 1/3), beside ``object recall`` (object pixels predicted as any
  object class) and the mIoU over background + the three classes;
- detection (RetinaNet, or Mask R-CNN's box head, on the one level P2 of a
  one-stage backbone: every FPN level sees the top backbone stage, so the
  stages bound what the floor sees; Levi & Ullman's top-down blocks need a
  second stage, so their Faster R-CNN rows read P2 and P3 of a two-stage
  backbone on larger scenes, 128 px, with the key farther away):
  for every ground-truth object, the highest-scoring detection, after the
  model's own NMS, with IoU >= 0.5 whatever its class; ``context acc`` = the
  fraction of the matched context-dependent objects (every object of a key
  scene, the twins of a twins scene: the annotations' ``context`` flags)
  whose detection has the right class (chance 1/3), beside ``recall@0.5``
  (every object matched).

The floor is the paper's baseline network (no context module) on the
benchmark's scenes; the ceiling is the same network on the ``--oracle``
scenes, where a square of the key colour touches each context-dependent
object. ``tools/analysis_tools/context_benchmark.py`` runs the rows, seeds
and the table.
"""
import os.path as osp
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ['Row', 'ROWS', 'KEY_DISTANCE', 'SCENE_SETS', 'slug', 'QUICK_ROWS', 'QUICK_ITERS',
           'HOUR_GROUPS', 'headline_rows', 'compose_config', 'run_settings', 'shared_runs',
           'context_map_path', 'seg_confusion', 'object_class_confusion',
           'seg_scores', 'train_and_score', 'det_scores', 'gt_context_flags',
           'match_context_flags', 'NO_BOXES', 'receptive_radius', 'summarize',
           'render_table']

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NUM_CLASSES = 3
FRAGMENTS = {'seg': 'configs/context_benchmark/_base_/seg_key_96.py',
             'det': 'configs/context_benchmark/_base_/det_key_96.py',
             'mask-rcnn': 'configs/context_benchmark/_base_/mask-rcnn_key_96.py',
             'faster-rcnn-c3': 'configs/context_benchmark/_base_/faster-rcnn_key_128.py'}
#: the side of the scenes each fragment trains on (its ``img_size``)
IMG_SIZE = {'seg': 96, 'det': 96, 'mask-rcnn': 96, 'faster-rcnn-c3': 128}
#: every object pixel lies farther than this from the key (Chebyshev, px),
#: per scene size: beyond the floors' reach (36: a one-stage trunk's 25-33 px;
#: 64: the two-stage trunk of the ENL rows, 53 px from a one-pixel RoI)
KEY_DISTANCE = {96: 36, 128: 64}
#: training iterations per task unless ``--iters`` says otherwise: a detector
#: learns the boxes before the classes, and at 600 iterations neither module
#: of the detection pilot had left chance (1 seed each)
ITERS = {'seg': 600, 'det': 1200}
#: a row's ``data``: the scenes (make_context_shapes.py's ``--scenes``) and
#: whether they are the oracle's
SCENE_SETS = {'key': ('key', False), 'oracle': ('key', True),
              'twins': ('twins', False), 'twins-oracle': ('twins', True)}


@dataclass(frozen=True)
class Row:
    """One row of the benchmark.

    Args:
        group: the paper's comparison the row belongs to (a table block).
        name: the row's label, as the paper names the module.
        config: the paper config it shrinks, relative to the repository.
        task: 'seg' or 'det' (which fragment and which score).
        data: the scenes, a key of ``SCENE_SETS``: 'key' (the benchmark),
            'oracle' (its ceiling), 'twins' or 'twins-oracle'.
        paper: the paper's own number for the row (its claim), or ''.
        role: 'floor', 'ceiling' or 'module'.
        overrides: settings merged after the fragment, e.g. dilations scaled
            to the benchmark's feature map.
        fragment: the key of the fragment merged over ``config`` in
            ``FRAGMENTS``; by default the task's ('seg': a segmentor's,
            'det': RetinaNet's; 'mask-rcnn' for a Mask R-CNN config,
            'faster-rcnn-c3' for a Faster R-CNN with two stages).
        train_iters: the row's training iterations, or 0 for its task's
            (``ITERS``).
    """
    group: str
    name: str
    config: str
    task: str
    data: str = 'key'
    paper: str = ''
    role: str = 'module'
    overrides: Dict = field(default_factory=dict)
    fragment: str = ''
    train_iters: int = 0

    @property
    def fragment_path(self) -> str:
        """The fragment merged over the row's config, relative to the repository."""
        return FRAGMENTS[self.fragment or self.task]

    @property
    def img_size(self) -> int:
        """The side of the row's scenes (its fragment's)."""
        return IMG_SIZE[self.fragment or self.task]

    @property
    def data_dir(self) -> str:
        """The row's scenes under the benchmark's data root: ``data`` (a key
        of ``SCENE_SETS``), with the size appended when it is not 96."""
        return self.data if self.img_size == 96 else f'{self.data}-{self.img_size}'

    @property
    def iters(self) -> int:
        """The row's training iterations by default: ``train_iters``, else
        ``ITERS`` of its task."""
        return self.train_iters or ITERS[self.task]

    @property
    def key(self) -> str:
        """A file-name-safe identifier of the row."""
        return slug(f'{self.group}-{self.name}-{self.data}')


def slug(text: str) -> str:
    """``text`` lower-cased, every run of other characters than letters and
    digits one '-' (a file name)."""
    words = ''.join(c if c.isalnum() else '-' for c in text.lower()).split('-')
    return '-'.join(w for w in words if w)


_OC = 'configs/ocnet/{}_r101-d8_4xb2-60k_cityscapes-512x1024.py'
_GC = 'configs/gcnet/{}_r101-d8_4xb2-60k_cityscapes-769x769.py'
_GCNL = 'configs/gcnl/{}_r50-d8-mg124_4xb2-80k_cityscapes-512x1024.py'
#: ASP-OC's rates 12 / 24 / 36 act on a 64 x 128 map in the paper (512 x 1024
#: crops, stride 8); the benchmark's map is 24 x 24, so they are divided by 3
#: (4 / 8 / 12): the largest still spans half the map, as 36 does in the paper.
_ASP_RATES = dict(model=dict(decode_head=dict(dilations=(4, 8, 12))))

#: mmseg's default classifier init, N(0, 0.01), which the benchmark's fragment
#: replaces by PyTorch's (``init_cfg=None``): the row that shows why
_MMSEG_INIT = dict(model=dict(decode_head=dict(
    init_cfg=dict(_delete_=True, type='Normal', std=0.01, override=dict(name='conv_seg')))))

#: the NL / GC blocks start as the identity (the last conv / W_z zero-
#: initialised, the papers' choice for fine-tuning a pretrained network); these
#: rows start them with PyTorch's default init instead
_NO_ZERO_INIT = dict(model=dict(decode_head=dict(context_cfg=dict(zero_init=False))))

#: diagnostics of the GC head (docs/context_benchmark/README.md, "Findings"): its
#: transform without the layer norm, and as one C x C conv (Cao et al.'s "w/o
#: ratio", Table 5(d)), which makes it the SNL block (the same pooling code)
_GC_NO_NORM = dict(model=dict(decode_head=dict(context_cfg=dict(norm=None))))
_GC_NO_BOTTLENECK = dict(model=dict(decode_head=dict(context_cfg=dict(bottleneck=False))))

_GCNL_DET = 'configs/gcnl/{}_1x_coco.py'
_GSA = 'configs/gsa/{}_adam-sgd-1x_coco-600.py'
#: Woo et al.'s BFPN / EBFPN necks are a chain [FPN, BFP-like] (the fragment
#: shrinks the FPN, compose_config); the balanced part gathers the one level
#: there is, P2, at itself: its gather / scatter are then the identity and
#: only its refine block (the non-local block, or the GCNL block) acts on P2
_ONE_LEVEL_BFP = dict(model=dict(neck={'1': dict(in_channels=32, num_levels=1,
                                                 refine_level=0)}))
#: Lee et al. put the self-attention between C5 and P5; here it acts between
#: C2 and P2 (SAFPN puts it on the top input, the only one), trained from
#: scratch: no checkpoint initialises its dense layers
_GSA_SCRATCH = dict(model=dict(neck=dict(attention_cfg=dict(init_cfg=None))))

_GC_DET = 'configs/gcnet/mask-rcnn_r50-syncbn{}_fpn_1x_coco.py'
#: Cao et al. put their blocks in c4 (one NL / SNL block, before its last
#: residual block) or in every bottleneck of c3-c5 (GC); the fragment's
#: backbone has one stage, C2, so the same plugin acts there (before C2's
#: last block, or in each of its three bottlenecks)
_IN_C2 = dict(model=dict(backbone=dict(plugins={'0': dict(stages=(True, ))})))


def _in_c2_changed(**block) -> dict:
    """``_IN_C2`` with ``block`` merged into the plugin's block settings: the
    GC rows' diagnostics, e.g. one C x C conv for the bottleneck transform
    (``bottleneck=False``, Cao et al.'s "w/o ratio", Table 5(d): the SNL
    block's transform in the GC blocks' places) or no layer norm in it."""
    return dict(model=dict(backbone=dict(plugins={'0': dict(stages=(True, ), cfg=block)})))


_ENL = 'configs/enl/faster-rcnn_r50_fpn{}_2xb2-360k_coco-600.py'
#: Levi & Ullman put their blocks on the top-down stream at res5, res4 and res3,
#: each before its level is upsampled; the fragment's trunk has two stages, and
#: the one top-down level upsampled is C3's (level 1), where the rows put them
_TD_AT_C3 = dict(model=dict(neck=dict(block_levels=(1, ))))

#: the key scenes' rows
_KEY_ROWS: Sequence[Row] = (
    Row('OCNet', 'Dilated FCN (floor)', _OC.format('dilated'), 'seg', paper='75.90',
        role='floor'),
    Row('OCNet', 'Dilated FCN, oracle key (ceiling)', _OC.format('dilated'), 'seg',
        data='oracle', role='ceiling'),
    Row('OCNet', 'Base-OC (SA)', _OC.format('baseoc-sa'), 'seg', paper='79.40'),
    Row('OCNet', 'Base-OC (SA), mmseg classifier init', _OC.format('baseoc-sa'), 'seg',
        overrides=_MMSEG_INIT),
    Row('OCNet', 'Base-OC (ISA)', _OC.format('baseoc-isa'), 'seg', paper='79.49'),
    Row('OCNet', 'Pyramid-OC (ISA)', _OC.format('pyramidoc-isa'), 'seg', paper='79.02'),
    Row('OCNet', 'ASP-OC (ISA)', _OC.format('aspoc-isa'), 'seg', paper='80.01',
        overrides=_ASP_RATES),
    Row('GCNet', 'FCN-concat baseline (floor)', _GC.format('fcn-concat'), 'seg',
        paper='75.42', role='floor'),
    Row('GCNet', 'NL head', _GC.format('nl-head'), 'seg', paper='77.59'),
    Row('GCNet', 'SNL head', _GC.format('snl-head'), 'seg', paper='77.22'),
    Row('GCNet', 'GC head', _GC.format('gc-head-att-add'), 'seg', paper='78.55'),
    Row('GCNet', 'NL head, zero_init=False', _GC.format('nl-head'), 'seg',
        overrides=_NO_ZERO_INIT),
    Row('GCNet', 'GC head, zero_init=False', _GC.format('gc-head-att-add'), 'seg',
        overrides=_NO_ZERO_INIT),
    Row('GCNet', 'GC head, norm=None (diagnostic)', _GC.format('gc-head-att-add'), 'seg',
        overrides=_GC_NO_NORM),
    Row('GCNet', 'GC head, bottleneck=False (diagnostic)', _GC.format('gc-head-att-add'),
        'seg', overrides=_GC_NO_BOTTLENECK),
    Row('GCNL', 'FCN (floor)', _GCNL.format('fcn'), 'seg', paper='73.32', role='floor'),
    Row('GCNL', 'FCN + GC', _GCNL.format('gc'), 'seg', paper='74.57'),
    Row('GCNL', 'FCN + GCNL', _GCNL.format('gcnl'), 'seg', paper='75.55'),
    Row('GCNL (det)', 'RetinaNet FPN (floor)', _GCNL_DET.format('retinanet_r50_fpn'), 'det',
        paper='35.5', role='floor'),
    Row('GCNL (det)', 'RetinaNet FPN, oracle key (ceiling)',
        _GCNL_DET.format('retinanet_r50_fpn'), 'det', data='oracle', role='ceiling'),
    Row('GCNL (det)', 'RetinaNet BFPN', _GCNL_DET.format('retinanet_r50_fpn-bfpn'), 'det',
        paper='36.2', overrides=_ONE_LEVEL_BFP),
    Row('GCNL (det)', 'RetinaNet EBFPN', _GCNL_DET.format('retinanet_r50_fpn-ebfpn'), 'det',
        paper='37.5', overrides=_ONE_LEVEL_BFP),
    Row('Self-attention (det)', 'RetinaNet FPN (floor)', _GSA.format('retinanet_r50_fpn'),
        'det', paper='35.2', role='floor'),
    Row('Self-attention (det)', 'RetinaNet + self-attention',
        _GSA.format('retinanet_r50_fpn-gsa'), 'det', paper='35.4', overrides=_GSA_SCRATCH),
    Row('GCNet (det)', 'Mask R-CNN FPN (floor)', _GC_DET.format(''), 'det', paper='37.2',
        role='floor', fragment='mask-rcnn'),
    Row('GCNet (det)', 'Mask R-CNN FPN, oracle key (ceiling)', _GC_DET.format(''), 'det',
        data='oracle', role='ceiling', fragment='mask-rcnn'),
    Row('GCNet (det)', '+ 1 NL (c4; C2 here)', _GC_DET.format('-1nl-c4'), 'det', paper='38.0',
        overrides=_IN_C2, fragment='mask-rcnn'),
    Row('GCNet (det)', '+ 1 SNL (c4; C2 here)', _GC_DET.format('-1snl-c4'), 'det',
        paper='38.1', overrides=_IN_C2, fragment='mask-rcnn'),
    Row('GCNet (det)', '+ GC r16 (c3-c5; C2 here)', _GC_DET.format('-gcb-r16-c3-c5'), 'det',
        paper='39.4', overrides=_IN_C2, fragment='mask-rcnn'),
    # the same blocks at ratio 4: 16 hidden units on C2's 64 channels instead of 4
    Row('GCNet (det)', '+ GC r4 (c3-c5; C2 here)', _GC_DET.format('-gcb-r4-c3-c5'), 'det',
        paper='39.9', overrides=_IN_C2, fragment='mask-rcnn'),
    Row('GCNet (det)', '+ GC r16, bottleneck=False (diagnostic)',
        _GC_DET.format('-gcb-r16-c3-c5'), 'det', overrides=_in_c2_changed(bottleneck=False),
        fragment='mask-rcnn'),
    Row('GCNet (det)', '+ GC r16, norm=None (diagnostic)', _GC_DET.format('-gcb-r16-c3-c5'),
        'det', overrides=_in_c2_changed(norm=None), fragment='mask-rcnn'),
    Row('ENL (det)', 'Faster R-CNN FPN (floor)', _ENL.format(''), 'det',
        paper='35.84 (APs 18.60)', role='floor', fragment='faster-rcnn-c3'),
    Row('ENL (det)', 'Faster R-CNN FPN, oracle key (ceiling)', _ENL.format(''), 'det',
        data='oracle', role='ceiling', fragment='faster-rcnn-c3'),
    Row('ENL (det)', '+3 NL, TD (original NL; C3 here)', _ENL.format('-nl-td'), 'det',
        paper='36.90 (APs 20.41)', overrides=_TD_AT_C3, fragment='faster-rcnn-c3'),
    Row('ENL (det)', '+3 NL, TD, eff (ENL; C3 here)', _ENL.format('-enl-td'), 'det',
        paper='36.59 (APs 20.35)', overrides=_TD_AT_C3, fragment='faster-rcnn-c3'),
)
#: the twins scenes (module docstring) for the segmentation heads of Yuan et
#: al. and Cao et al. and the RetinaNet rows of Woo et al. and Lee et al.:
#: their key rows, the floor's ceiling on the twins' oracle scenes (the paper
#: configs, fragment and budget of the key rows)
_TWINS_OF = {'OCNet': ('Dilated FCN (floor)', 'Dilated FCN, oracle key (ceiling)',
                       'Base-OC (SA)', 'Base-OC (ISA)', 'Pyramid-OC (ISA)', 'ASP-OC (ISA)'),
             'GCNet': ('FCN-concat baseline (floor)', 'NL head', 'SNL head', 'GC head'),
             'GCNL (det)': ('RetinaNet FPN (floor)', 'RetinaNet FPN, oracle key (ceiling)',
                            'RetinaNet BFPN', 'RetinaNet EBFPN'),
             'Self-attention (det)': ('RetinaNet FPN (floor)', 'RetinaNet + self-attention')}
_TWINS_ROWS = tuple(
    replace(r, group=f'{r.group} (twins)', data='twins-oracle' if r.data == 'oracle' else 'twins')
    for group, names in _TWINS_OF.items() for name in names
    for r in _KEY_ROWS if r.group == group and r.name == name)
#: the twins' RetinaNet rows at twice their budget, in one group (one floor for
#: both papers): at 1200 iterations their modules gave a twin one of the
#: scene's two classes before the right one (docs/context_benchmark); does the
#: floor stay at chance when the modules have the time?
LONGER_GROUP = 'RetinaNet (det) (twins, 2x budget)'
_LONGER_OF = {'GCNL (det)': ('RetinaNet FPN (floor)', 'RetinaNet BFPN', 'RetinaNet EBFPN'),
              'Self-attention (det)': ('RetinaNet + self-attention', )}
_LONGER_ROWS = tuple(
    replace(r, group=LONGER_GROUP, train_iters=2 * r.iters)
    for group, names in _LONGER_OF.items() for name in names
    for r in _TWINS_ROWS if r.group == f'{group} (twins)' and r.name == name)
#: every row of the benchmark: the key scenes', the twins scenes', the twins'
#: RetinaNet rows at twice the budget
ROWS: Sequence[Row] = _KEY_ROWS + _TWINS_ROWS + _LONGER_ROWS
#: ``--quick`` and the test: the floor against one context head
QUICK_ROWS: Sequence[Row] = (ROWS[0], ROWS[2])
#: their iterations in ``--quick``: at 300 Base-OC (SA) reads the key on seeds 0, 1 and
#: 2 (100 %) and the floor stays at chance (32.5 +- 0.5 %), in ~22 / ~32 s of training
#: on one core (docs/context_benchmark/quick.md); the full table trains 600
QUICK_ITERS = 300
#: ``--hour``: the groups whose paper rows (``headline_rows``) fit in an hour on
#: two cores, three seeds two at a time (57.0 min measured from nothing,
#: docs/context_benchmark/hour.md): one comparison each of Yuan et al.,
#: Cao et al. (their segmentation heads), Woo et al. and Lee et al. (RetinaNet,
#: one floor for both: ``shared_runs``). Levi & Ullman's Faster R-CNN rows and
#: Cao et al.'s Mask R-CNN rows take 6-12 min a run and do not fit
HOUR_GROUPS = ('OCNet', 'GCNet', 'GCNL (det)', 'Self-attention (det)')
#: where each group's paper numbers come from
GROUP_CLAIMS = {
    'OCNet': 'Yuan et al., OCNet, Table 5: Cityscapes val mIoU',
    'GCNet': 'Cao et al., Global Context Networks, Table 12(a): Cityscapes val mIoU',
    'GCNL': 'Woo et al., Global Context and Geometric Priors..., Table 1: Cityscapes mIoU',
    'GCNL (det)': 'Woo et al., Global Context and Geometric Priors..., Table 2: COCO val box AP '
                  'of RetinaNet R-50',
    'Self-attention (det)': 'Lee, Kim and Jung, Improving Object Detection Quality by '
                            'Incorporating Global Contexts via Self-Attention, Table 6: COCO box '
                            'AP of RetinaNet R-50-FPN, Adam + SGD',
    'GCNet (det)': 'Cao et al., Global Context Networks, Table 5(a): COCO val box AP of Mask '
                   'R-CNN R-50-FPN (syncBN)',
    'ENL (det)': 'Levi and Ullman, Efficient Coarse-to-Fine Non-Local Module for the Detection '
                 'of Small Objects, Table 4: COCO box AP (APs: small objects) of Faster R-CNN '
                 'R-50-FPN, shorter side 600',
}
GROUP_CLAIMS.update({f'{group} (twins)': f'twins scenes; {GROUP_CLAIMS[group]}'
                     for group in _TWINS_OF})
GROUP_CLAIMS[LONGER_GROUP] = ('twins scenes, twice the budget; '
                              + '; '.join(GROUP_CLAIMS[g] for g in _LONGER_OF))


def headline_rows(rows: Sequence[Row], groups: Sequence[str]) -> List[Row]:
    """The rows of ``groups`` that the papers report (a paper number), with
    their floors and ceilings: no variant or diagnostic."""
    return [r for r in rows if r.group in groups and (r.paper or r.role != 'module')]


def compose_config(row: Row, data_root: str, iters: int, seed: int, work_dir: str,
                   batch_size: Optional[int] = None, extra: Optional[dict] = None):
    """The row's paper config with the benchmark fragment, the row's
    overrides and ``extra`` merged over it, set to ``iters`` iterations of
    ``seed`` on the data under ``data_root`` (``<data_root>/<row.data_dir>``)."""
    from mmengine.config import Config

    cfg = Config.fromfile(osp.join(REPO, row.config))
    fragment = Config.fromfile(osp.join(REPO, row.fragment_path)).to_dict()
    if isinstance(cfg.model.get('neck'), list) and 'neck' in fragment['model']:
        # a neck chain ([FPN, BFP-like], Woo et al.'s BFPN / EBFPN): the
        # fragment's neck is its first element's (mmengine would otherwise
        # replace the chain or fail); the row's overrides size the rest
        fragment['model']['neck'] = {'0': fragment['model']['neck']}
    cfg.merge_from_dict(fragment)
    for more in (row.overrides, extra):
        if more:
            cfg.merge_from_dict(more)
    root = osp.join(data_root, row.data_dir)
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[split].dataset.data_root = root
        if batch_size and split == 'train_dataloader':
            cfg[split].batch_size = batch_size
    if 'ann_file' in cfg.val_evaluator:  # detection: a valid config for tools/test.py
        cfg.val_evaluator.ann_file = osp.join(root, cfg.val_dataloader.dataset.ann_file)
        cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.max_iters = iters
    # no validation inside training (mmengine's loop validates at the last
    # iteration whatever the interval): train_and_score scores the model
    cfg.train_cfg.val_interval = iters + 1
    cfg.train_cfg.val_begin = iters + 1
    warmup, main = cfg.param_scheduler
    warmup.end = max(1, int(iters * cfg.warmup_fraction))
    main.begin, main.end = warmup.end, iters
    cfg.default_hooks.checkpoint.interval = iters + 1
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = work_dir
    return cfg


def run_settings(cfg) -> dict:
    """What a run of ``cfg`` is made of: the settings ``Runner.from_cfg``
    passes to mmengine's Runner, the work directory excepted. The config's
    other keys are its files' variables (e.g. Lee et al.'s ``sgd_optimizer``,
    read only by the optimiser-switch hook the detection fragment removes)."""
    import inspect

    from mmengine.runner import Runner

    names = set(inspect.signature(Runner.__init__).parameters) - {'self', 'work_dir', 'cfg'}
    return {name: cfg.get(name) for name in sorted(names)}


def shared_runs(rows: Sequence[Row], data_root: str,
                iters_of: Dict[str, int]) -> Dict[str, str]:
    """Each row's key -> the key of the first of ``rows`` whose run is the same
    (``run_settings`` equal at the row's iterations, ``iters_of``; the seed
    sets every row alike), e.g. the RetinaNet floors of Woo et al. and Lee et
    al., two paper configs that compose to one network, data and schedule:
    trained once, recorded for both."""
    import json

    first, shared = {}, {}
    for row in rows:
        cfg = compose_config(row, data_root, iters_of[row.key], 0, '')
        settings = json.dumps(run_settings(cfg), sort_keys=True, default=repr)
        shared[row.key] = first.setdefault(settings, row.key)
    return shared


def train_and_score(cfg, task: str = 'seg'):
    """Train ``cfg`` with mmengine's Runner (as tools/train.py does), then
    score it on its validation set (module docstring).

    Returns:
        (scores, training wall time in seconds)
    """
    import time

    import cv2
    import torch
    from mmengine.runner import Runner

    from mmctx.utils import register_all_modules

    register_all_modules()
    runner = Runner.from_cfg(cfg)
    start = time.perf_counter()
    runner.train()
    wall = time.perf_counter() - start
    model = runner.model.eval()
    conf = np.zeros((NUM_CLASSES + 1, ) * 2, np.int64)
    object_conf = np.zeros((NUM_CLASSES, ) * 2, np.int64)
    images = []
    if task != 'seg':
        flags = gt_context_flags(runner.val_dataloader.dataset.ann_file)
    with torch.no_grad():
        for data in runner.val_dataloader:
            for out in model.val_step(data):
                if task == 'seg':
                    gt = out.gt_sem_seg.data[0].numpy()
                    conf += seg_confusion(out.pred_sem_seg.data[0].numpy(), gt)
                    path = context_map_path(out.img_path)
                    context = cv2.imread(path, cv2.IMREAD_UNCHANGED)
                    if context is None:
                        raise FileNotFoundError(
                            f'{path}: no context map; scenes written before '
                            'make_context_shapes.py version 2 have none: write them again')
                    object_conf += object_class_confusion(out.seg_logits.data.numpy(), gt,
                                                          context > 0)
                else:
                    pred, gt = out.pred_instances, out.gt_instances
                    gt_bboxes = gt.bboxes.numpy()
                    images.append(dict(gt_bboxes=gt_bboxes, gt_labels=gt.labels.numpy(),
                                       gt_context=match_context_flags(
                                           gt_bboxes, flags.get(out.img_id, NO_BOXES)),
                                       bboxes=pred.bboxes.numpy(), scores=pred.scores.numpy(),
                                       labels=pred.labels.numpy()))
    scores = seg_scores(conf, object_conf) if task == 'seg' else det_scores(images)
    return scores, wall


def seg_confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int = NUM_CLASSES + 1,
                  ignore_index: int = 255) -> np.ndarray:
    """``conf[g, p]``: pixels of ground truth ``g`` predicted ``p``."""
    pred, gt = np.asarray(pred).ravel(), np.asarray(gt).ravel()
    keep = gt != ignore_index
    idx = gt[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def context_map_path(img_path: str) -> str:
    """The context map of a scene (make_context_shapes.py):
    ``<root>/images/<split>/<name>`` -> ``<root>/context/<split>/<name>``."""
    split_dir, name = osp.split(img_path)
    images_dir, split = osp.split(split_dir)
    return osp.join(osp.dirname(images_dir), 'context', split, name)


def object_class_confusion(logits: np.ndarray, gt: np.ndarray,
                           context: Optional[np.ndarray] = None) -> np.ndarray:
    """``conf[g, p]`` over the ground-truth object pixels (label >= 1), those
    of ``context`` alone if given: ``p`` is the object class of highest
    logit, background excluded (0-based).

    Args:
        logits: (1 + NUM_CLASSES, H, W) segmentation logits.
        gt: (H, W) labels, 0 the background.
        context: (H, W) bool, the context-dependent pixels (the scene's
            context map), or None for every object pixel.
    """
    gt = np.asarray(gt)
    obj = (gt >= 1) & (gt <= NUM_CLASSES)
    if context is not None:
        obj &= np.asarray(context, bool)
    pred = np.asarray(logits)[1:].argmax(0)[obj]
    return seg_confusion(pred, gt[obj] - 1, NUM_CLASSES)


def seg_scores(conf: np.ndarray, object_conf: np.ndarray) -> Dict[str, float]:
    """Context accuracy (of ``object_conf``, :func:`object_class_confusion`),
    object recall and mIoU (of ``conf``, :func:`seg_confusion`, class 0 the
    background); module docstring."""
    conf = np.asarray(conf, np.float64)
    object_conf = np.asarray(object_conf, np.float64)
    iou = np.diag(conf) / np.maximum(conf.sum(0) + conf.sum(1) - np.diag(conf), 1)
    return dict(context_acc=float(np.trace(object_conf) / max(object_conf.sum(), 1)),
                object_recall=float(conf[1:, 1:].sum() / max(conf[1:].sum(), 1)),
                miou=float(iou.mean()))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each row of ``boxes``."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def det_scores(images: List[dict], iou_thr: float = 0.5) -> Dict[str, float]:
    """Context accuracy and recall of detections (module docstring).

    Args:
        images: one dict per image with ``gt_bboxes`` (N, 4), ``gt_labels`` (N,),
            ``bboxes`` (M, 4), ``scores`` (M,), ``labels`` (M,), and optionally
            ``gt_context`` (N,): which objects only context can classify (the
            annotations' ``context`` flags, :func:`gt_context_flags`); the
            context accuracy counts those alone, the recall every object.
            Without it every object counts (a key scene's are all context).
    """
    matched = context_matched = right = total = 0
    for im in images:
        boxes = np.asarray(im['bboxes'], np.float64).reshape(-1, 4)
        scores = np.asarray(im['scores'], np.float64)
        labels = np.asarray(im['labels'])
        gt_boxes = np.asarray(im['gt_bboxes'], np.float64).reshape(-1, 4)
        context = np.asarray(im.get('gt_context', np.ones(len(gt_boxes), bool)), bool)
        for gt_box, gt_label, is_context in zip(gt_boxes, im['gt_labels'], context):
            total += 1
            if not len(boxes):
                continue
            hit = _iou(gt_box, boxes) >= iou_thr
            if not hit.any():
                continue
            best = np.flatnonzero(hit)[np.argmax(scores[hit])]
            matched += 1
            if is_context:
                context_matched += 1
                right += int(labels[best] == gt_label)
    return dict(context_acc=right / max(context_matched, 1), recall50=matched / max(total, 1))


def gt_context_flags(ann_file: str) -> Dict[int, tuple]:
    """Each image's annotated boxes (x0, y0, x1, y1) and their ``context``
    flags (make_context_shapes.py version 2), by image id, from a COCO file."""
    import json

    with open(ann_file) as f:
        anns = json.load(f)['annotations']
    flags: Dict[int, tuple] = {}
    for ann in anns:
        if 'context' not in ann:
            raise KeyError(f'{ann_file}: annotation {ann["id"]} has no "context" flag; '
                           'scenes written before make_context_shapes.py version 2 have '
                           'none: write them again')
        x, y, w, h = ann['bbox']
        boxes, context = flags.setdefault(ann['image_id'], ([], []))
        boxes.append((x, y, x + w, y + h))
        context.append(bool(ann['context']))
    return {k: (np.asarray(b, np.float64), np.asarray(c, bool)) for k, (b, c) in flags.items()}


#: an image without annotations, as gt_context_flags would give it
NO_BOXES = (np.zeros((0, 4)), np.zeros(0, bool))


def match_context_flags(gt_bboxes: np.ndarray, annotated: tuple) -> np.ndarray:
    """The ``context`` flag of each ground-truth box of a loaded image, found
    among the image's annotated boxes (``gt_context_flags``) by its box: the
    dataset may drop or reorder annotations, never change a box."""
    boxes, context = annotated
    gt_bboxes = np.asarray(gt_bboxes, np.float64).reshape(-1, 4)
    out = np.zeros(len(gt_bboxes), bool)
    for i, gt_box in enumerate(gt_bboxes):
        if not len(boxes):
            raise ValueError(f'ground-truth box {gt_box.tolist()} in an image without '
                             'annotated boxes')
        iou = _iou(gt_box, boxes)
        j = int(np.argmax(iou))
        if iou[j] < 0.999:
            raise ValueError(f'ground-truth box {gt_box.tolist()} is not among the '
                             f'image\'s annotated boxes (best IoU {iou[j]:.3f})')
        out[i] = context[j]
    return out


def receptive_radius(model, size: int = 256) -> int:
    """Chebyshev radius, in input pixels, of the region that one output pixel
    at the image centre depends on: the extent of the non-zero input gradient
    of the segmentor's upsampled logits there, of a dense detector's
    classification logits (its first level's, upsampled alike), or of a
    two-stage detector's class logits for a RoI of one pixel there (eval
    mode, so that batch statistics couple nothing). A two-stage detector's
    RoI of a box sees this far beyond the box, or less (RoIAlign samples
    inside it).

    Measure an mmdet ResNet before ``init_weights``: it zero-initialises the
    last norm layer of every residual branch, which hides the branches from
    the gradient."""
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    x = torch.randn(1, 3, size, size, requires_grad=True)
    c = size // 2
    if hasattr(model, 'roi_head'):  # a two-stage detector: one RoI, one pixel wide
        rois = x.new_tensor([[0, c - 0.5, c - 0.5, c + 0.5, c + 0.5]])
        cls_score = model.roi_head._bbox_forward(model.extract_feat(x), rois)['cls_score']
        cls_score.sum().backward()
    else:
        out = model._forward(x)
        if isinstance(out, (tuple, list)):  # a dense detector: (cls_scores, bbox_preds)
            out = out[0][0]
        logits = F.interpolate(out, size=(size, size), mode='bilinear', align_corners=False)
        logits[0, :, c, c].sum().backward()
    ys, xs = torch.nonzero(x.grad.abs().sum((0, 1)) > 0, as_tuple=True)
    model.train(was_training)
    return int(max(c - ys.min(), ys.max() - c, c - xs.min(), xs.max() - c))


def summarize(records: List[dict]) -> List[dict]:
    """Mean and sample std over seeds of every row's scores, in ``ROWS`` order
    of first appearance."""
    out, order = {}, []
    for r in records:
        if r['row'] not in out:
            out[r['row']] = dict(r['meta'], seeds=[], scores={}, wall_s=[], peak_mb=[],
                                 iters=r.get('iters'))
            order.append(r['row'])
        s = out[r['row']]
        s['seeds'].append(r['seed'])
        for k, v in r['scores'].items():
            s['scores'].setdefault(k, []).append(v)
        s['wall_s'].append(r['wall_s'])
        s['peak_mb'].append(r['peak_mb'])
    rows = []
    for key in order:
        s = out[key]
        stats = {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                 for k, v in s.pop('scores').items()}
        rows.append(dict(s, stats=stats, wall_s=float(np.mean(s['wall_s'])),
                         peak_mb=float(np.max(s['peak_mb']))))
    return rows


def _pm(stat, scale=100.0) -> str:
    mean, std = stat
    return f'{mean * scale:.1f} ± {std * scale:.1f}'


def render_table(summary: List[dict]) -> str:
    """The markdown table: per group (its training iterations in its title),
    floor, ceiling and modules with the context accuracy (mean ± std over
    seeds, %), the other scores, the verdict against the floor, the paper's
    number, wall time and peak memory."""
    lines = []
    for group in dict.fromkeys(r['group'] for r in summary):
        rows = [r for r in summary if r['group'] == group]
        floor = next((r for r in rows if r['role'] == 'floor'), None)
        task = rows[0]['task']
        other = ('object_recall', 'miou') if task == 'seg' else ('recall50', )
        names = {'object_recall': 'object recall', 'miou': 'mIoU', 'recall50': 'recall@0.5'}
        iters = ' / '.join(str(i) for i in sorted({r['iters'] for r in rows if r.get('iters')}))
        iters = f'; {iters} training iterations' if iters else ''
        lines += [f'**{group}** ({GROUP_CLAIMS.get(group, "")}{iters}; paper column: its number)',
                  '',
                  '| row | context acc (%) | ' + ' | '.join(names[k] + ' (%)' for k in other)
                  + ' | vs floor | paper | seeds | train s | peak MB |',
                  '|---|---|' + '---|' * len(other) + '---|---|---|---|---|']
        for r in rows:
            st = r['stats']
            if r['role'] == 'module' and floor is not None:
                m, s = st['context_acc']
                fm, fs = floor['stats']['context_acc']
                gap = m - fm
                verdict = (f'+{gap * 100:.1f}' if gap > 2 * max(s, fs) else
                           f'{gap * 100:+.1f} (within 2 std)')
            else:
                verdict = r['role']
            lines.append(f'| {r["name"]} | {_pm(st["context_acc"])} | '
                         + ' | '.join(_pm(st[k]) for k in other)
                         + f' | {verdict} | {r["paper"] or "–"} | {len(r["seeds"])} | '
                         f'{r["wall_s"]:.0f} | {r["peak_mb"]:.0f} |')
        lines.append('')
    return '\n'.join(lines)
