"""Training and inference cost of whole detectors / segmentors, and an AMP check.

What each paper claims its module costs on top of its baseline network:

- Cao et al., "Global Context Networks" (GCNet): Table 5(a), Mask R-CNN
  R-50 FPN at 800 px, 279.4 GFLOPs baseline; one non-local block in c4
  288.7 G (+3.3 %), one GC block 279.4 G, GC in every block of c3-c5
  279.6 G (+0.07 %).
- Woo et al., "Global Context and Geometric Priors for Effective Non-Local
  Self-Attention" (GCNL): Table 2, Faster R-CNN 207.07 G, + BFPN 208.12 G
  (+0.5 %), + EBFPN 207.73 G (+0.3 %) at 1280 x 800.
- Lee, Kim, Jung, "Improving Object Detection Quality by Incorporating Global
  Contexts via Self-Attention": one self-attention layer before the RPN / on
  the FPN; no cost figure in the paper.
- Levi, Ullman, "Efficient Coarse-to-Fine Non-Local Module for the Detection
  of Small Objects" (ENL), Table 1 and Sec. 3.2: the explicit non-local
  holds an HW x HW matrix (O((HW)^2) memory), the efficient one a C x C_g
  matrix (O(HW)); "at least 4 orders" less memory inside the block at
  stride 4 of an 800 x 1000 image.
- Yuan et al., "OCNet: Object Context for Semantic Segmentation", Table 4
  (heads on 1 x 2048 x 128 x 128, V100): Base-OC (SA) 2168 MB / 66 ms,
  Base-OC (ISA) 301 MB / 42 ms; Fig. 4 (1 x 512 x 128 x 128): ISA takes
  10.2 % of SA's memory, 24.6 % of its FLOPs, about half its time.

The papers give FLOPs and module-level inference cost; this module measures
what they leave out: seconds per training iteration (forward, backward and
optimizer step through the model's own ``train_step``, as the runner does)
and per inference batch (``test_step``), and the peak memory of each, for
the real configs at the papers' input sizes. No data set is read: the batch
is synthetic (random images; random boxes, labels and masks in mmdet
``DetDataSample``; random label maps in mmseg ``SegDataSample``) and goes
through the model's own ``data_preprocessor``.

:func:`amp_check` runs fp16 (CUDA, with a dynamic ``GradScaler`` through
mmengine's ``AmpOptimWrapper``) or bf16 (CPU autocast) training iterations
and reports whether the loss and the unscaled gradients are finite.
"""
import copy
import logging
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope

from ..utils.scope import task_scope
from ..utils.setup_env import register_all_modules

__all__ = [
    'CostEntry', 'PAPER_ENTRIES', 'DRY_RUN_ENTRIES', 'DRY_RUN_AMP_ENTRIES', 'load_model_config',
    'strip_pretrained', 'build_model', 'synthetic_batch', 'time_call',
    'measure_cost', 'amp_check', 'add_overheads', 'select_entries'
]

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# init_cfg types that load weights from a file or a URL (nothing can be downloaded
# for a cost measurement, and the cost does not depend on the weights).
WEIGHT_LOADING_INITS = ('Pretrained', 'BottleneckAttentionInit')


class CostEntry(dict):
    """One row of the cost table: a config measured at a paper's input size.

    Keys: ``paper``, ``name`` (the paper's row label), ``config`` (path
    relative to the repository), ``size`` (H, W) of the input images,
    ``batch`` (images per iteration), ``baseline`` (the row the paper's
    other rows are compared with), ``claim`` (what the paper says, or ''),
    ``cfg_options`` (settings merged into the config, as ``--cfg-options``).
    """

    def __init__(self, paper: str, name: str, config: str, size: Tuple[int, int],
                 batch: int = 2, baseline: bool = False, claim: str = '',
                 cfg_options: Optional[dict] = None) -> None:
        super().__init__(paper=paper, name=name, config=config, size=tuple(size),
                         batch=batch, baseline=baseline, claim=claim,
                         cfg_options=dict(cfg_options or {}))


_DET = (800, 1333)        # mmdet 1x schedule: shorter side 800, longer at most 1333
_DET600 = (600, 1000)     # ENL: shorter side 600
_GSA = (600, 1024)        # Lee et al.: shorter side 600, longer at most 1024
_CITY = (512, 1024)       # Cityscapes crops (OCNet, GCNL)
_CITY769 = (769, 769)     # Cityscapes crops (GCNet)
_ADE = (520, 520)         # OCNet's ADE20K / PASCAL-Context / COCO-Stuff crops

PAPER_ENTRIES: List[CostEntry] = [
    # Cao et al., "Global Context Networks": Table 5(a), Mask R-CNN R-50 FPN
    CostEntry('GCNet', 'Mask R-CNN R-50 (baseline)',
              'configs/gcnet/mask-rcnn_r50-syncbn_fpn_1x_coco.py', _DET, baseline=True,
              claim='279.4 GFLOPs'),
    CostEntry('GCNet', '+1 NL (c4)', 'configs/gcnet/mask-rcnn_r50-syncbn-1nl-c4_fpn_1x_coco.py',
              _DET, claim='288.7 GFLOPs (+3.3 %)'),
    CostEntry('GCNet', '+1 GC (c4)',
              'configs/gcnet/mask-rcnn_r50-syncbn-1gcb-r16-c4_fpn_1x_coco.py', _DET,
              claim='279.4 GFLOPs (+0.0 %)'),
    CostEntry('GCNet', '+GC r16 (c3-c5)',
              'configs/gcnet/mask-rcnn_r50-syncbn-gcb-r16-c3-c5_fpn_1x_coco.py', _DET,
              claim='279.6 GFLOPs (+0.07 %)'),
    CostEntry('GCNet', '+GC r4 (c3-c5)',
              'configs/gcnet/mask-rcnn_r50-syncbn-gcb-r4-c3-c5_fpn_1x_coco.py', _DET,
              claim='279.6 GFLOPs'),
    # GCNet Table 12 (Cityscapes, 769 x 769 crops): heads on a dilated R-101
    CostEntry('GCNet', 'FCN-concat R-101 (seg baseline)',
              'configs/gcnet/fcn-concat_r101-d8_4xb2-60k_cityscapes-769x769.py', _CITY769,
              baseline=True),
    CostEntry('GCNet', 'NL head', 'configs/gcnet/nl-head_r101-d8_4xb2-60k_cityscapes-769x769.py',
              _CITY769),
    CostEntry('GCNet', 'GC head (att + add)',
              'configs/gcnet/gc-head-att-add_r101-d8_4xb2-60k_cityscapes-769x769.py', _CITY769),
    # Woo et al. (GCNL), Table 2: Faster R-CNN R-50 FPN
    CostEntry('GCNL', 'Faster R-CNN R-50 FPN (baseline)',
              'configs/gcnl/faster-rcnn_r50_fpn_1x_coco.py', _DET, baseline=True,
              claim='207.07 GFLOPs'),
    CostEntry('GCNL', '+ BFPN', 'configs/gcnl/faster-rcnn_r50_fpn-bfpn_1x_coco.py', _DET,
              claim='208.12 GFLOPs (+0.5 %)'),
    CostEntry('GCNL', '+ EBFPN', 'configs/gcnl/faster-rcnn_r50_fpn-ebfpn_1x_coco.py', _DET,
              claim='207.73 GFLOPs (+0.3 %)'),
    # GCNL Table 1 (Cityscapes 512 x 1024 crops): FCN R-50 vs the GCNL head
    CostEntry('GCNL', 'FCN R-50-D8 (seg baseline)',
              'configs/gcnl/fcn_r50-d8-mg124_4xb2-80k_cityscapes-512x1024.py', _CITY,
              baseline=True),
    CostEntry('GCNL', 'GCNL head', 'configs/gcnl/gcnl_r50-d8-mg124_4xb2-80k_cityscapes-512x1024.py',
              _CITY),
    # Lee, Kim, Jung: RetinaNet and Faster R-CNN C4, with and without self-attention
    CostEntry('GSA', 'RetinaNet R-50 FPN (baseline)',
              'configs/gsa/retinanet_r50_fpn_adam-sgd-1x_coco-600.py', _GSA, baseline=True),
    CostEntry('GSA', 'RetinaNet + self-attention',
              'configs/gsa/retinanet_r50_fpn-gsa_adam-sgd-1x_coco-600.py', _GSA),
    CostEntry('GSA', 'Faster R-CNN R-50 C4 (baseline)',
              'configs/gsa/faster-rcnn_r50-caffe-c4_adam-sgd-1x_coco-600.py', _GSA, baseline=True),
    CostEntry('GSA', 'Faster R-CNN C4 + self-attention',
              'configs/gsa/faster-rcnn_r50-caffe-c4-gsa_adam-sgd-1x_coco-600.py', _GSA),
    # Levi, Ullman (ENL), Table 4: Faster R-CNN R-50 FPN at 600 px
    CostEntry('ENL', 'Faster R-CNN R-50 FPN (baseline)',
              'configs/enl/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py', _DET600, baseline=True),
    CostEntry('ENL', '+1 NL, BU (c4)', 'configs/enl/faster-rcnn_r50_fpn-nl-bu_2xb2-360k_coco-600.py',
              _DET600),
    CostEntry('ENL', '+3 NL, TD (explicit)',
              'configs/enl/faster-rcnn_r50_fpn-nl-td_2xb2-360k_coco-600.py', _DET600,
              claim='O((HW)^2) memory in each block'),
    CostEntry('ENL', '+3 ENL, TD (efficient)',
              'configs/enl/faster-rcnn_r50_fpn-enl-td_2xb2-360k_coco-600.py', _DET600,
              claim='O(HW) memory in each block'),
    # Yuan et al. (OCNet), Tables 1-5: dilated R-101 on Cityscapes, R-50 on ADE20K
    CostEntry('OCNet', 'Dilated R-101 (baseline)',
              'configs/ocnet/dilated_r101-d8_4xb2-60k_cityscapes-512x1024.py', _CITY,
              baseline=True),
    CostEntry('OCNet', '+ Base-OC (SA)',
              'configs/ocnet/baseoc-sa_r101-d8_4xb2-60k_cityscapes-512x1024.py', _CITY,
              claim='head alone: 2168 MB, 66 ms (Table 4)'),
    CostEntry('OCNet', '+ Base-OC (ISA)',
              'configs/ocnet/baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py', _CITY,
              claim='head alone: 301 MB, 42 ms (Table 4)'),
    CostEntry('OCNet', 'Dilated R-50 ADE20K (baseline)',
              'configs/ocnet/dilated_r50-d8_4xb4-150k_ade20k-520x520.py', _ADE, baseline=True),
    CostEntry('OCNet', '+ Base-OC (SA), ADE20K',
              'configs/ocnet/baseoc-sa_r50-d8_4xb4-150k_ade20k-520x520.py', _ADE),
    CostEntry('OCNet', '+ Base-OC (ISA), ADE20K',
              'configs/ocnet/baseoc-isa_r50-d8_4xb4-150k_ade20k-520x520.py', _ADE),
]

# The CPU dry run: a detector with masks (baseline + module, for the overhead)
# and a segmentor, at tiny sizes, one image per batch. Mask R-CNN's R-CNN
# stage costs the same at any image size (2000 proposals, 512 sampled RoIs,
# a 28 x 28 mask per positive): the dry run asks it for fewer.
_FEW_ROIS = {
    'model.train_cfg.rpn_proposal.nms_pre': 200,
    'model.train_cfg.rpn_proposal.max_per_img': 100,
    'model.train_cfg.rcnn.sampler.num': 64,
    'model.test_cfg.rpn.nms_pre': 200,
    'model.test_cfg.rpn.max_per_img': 100,
    'model.test_cfg.rcnn.max_per_img': 20,
}
# mmseg's data_preprocessor pads every image to the crop size (520 x 520 here)
_SEG64 = {'model.data_preprocessor.size': (64, 64)}


def _dry(entry: CostEntry, size: Tuple[int, int], options: dict) -> CostEntry:
    return CostEntry(entry['paper'], entry['name'], entry['config'], size, batch=1,
                     baseline=entry['baseline'], claim=entry['claim'], cfg_options=options)


def _entry(name: str) -> CostEntry:
    return next(e for e in PAPER_ENTRIES if e['name'] == name)


DRY_RUN_ENTRIES: List[CostEntry] = [
    _dry(_entry('Mask R-CNN R-50 (baseline)'), (96, 128), _FEW_ROIS),
    _dry(_entry('+GC r16 (c3-c5)'), (96, 128), _FEW_ROIS),
    _dry(_entry('+ Base-OC (ISA), ADE20K'), (64, 64), _SEG64),
]
# The dry run's AMP check: bf16 autocast on the CPU. A detector with
# self-attention whose training needs no mmcv op (mmcv's CPU nms has no bf16
# kernel, so a two-stage detector fails there; CUDA's runs fp16), and the
# segmentor.
DRY_RUN_AMP_ENTRIES: List[CostEntry] = [
    _dry(_entry('RetinaNet + self-attention'), (96, 128), {}),
    DRY_RUN_ENTRIES[-1],
]


def select_entries(entries: Sequence[CostEntry], patterns: Optional[Sequence[str]]):
    """Entries whose paper, name or config contains one of ``patterns`` (all if None)."""
    if not patterns:
        return list(entries)
    chosen = [e for e in entries
              if any(p.lower() in f"{e['paper']} {e['name']} {e['config']}".lower()
                     for p in patterns)]
    if not chosen:
        raise ValueError(f'--configs {list(patterns)} matches no entry; entries: '
                         + ', '.join(osp.basename(e['config']) for e in entries))
    return chosen


def load_model_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config (relative paths from the repository root) with mmctx imported,
    ``cfg_options`` (``{'model.x.y': value}``) merged in."""
    register_all_modules()
    full = path if osp.isabs(path) else osp.join(REPO, path)
    if not osp.isfile(full):
        raise FileNotFoundError(f'config file not found: {full}')
    cfg = Config.fromfile(full)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def strip_pretrained(cfg) -> int:
    """Remove every weight-loading ``init_cfg`` and ``pretrained`` from a model config.

    Works in place on nested dicts / lists; returns how many were removed.
    Other initialisers (``Normal``, ``Kaiming``, ...) stay, so
    ``init_weights()`` gives the model the start it trains from.
    """
    removed = 0
    if isinstance(cfg, dict):
        for key in list(cfg.keys()):
            value = cfg[key]
            if key == 'pretrained' and value is not None:
                cfg[key] = None
                removed += 1
            elif key == 'init_cfg':
                inits = value if isinstance(value, list) else [value]
                keep = [i for i in inits
                        if not (isinstance(i, dict) and i.get('type') in WEIGHT_LOADING_INITS)]
                removed += len(inits) - len(keep)
                if len(keep) != len(inits):
                    cfg[key] = (keep if isinstance(value, list) else None) or None
                for i in keep:
                    removed += strip_pretrained(i)
            else:
                removed += strip_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for item in cfg:
            removed += strip_pretrained(item)
    return removed


def build_model(cfg: Config, device: str = 'cpu') -> nn.Module:
    """The config's model on ``device``: SyncBN reverted, initialised, no weights loaded."""
    init_default_scope(task_scope(cfg))
    model_cfg = copy.deepcopy(cfg.model)
    strip_pretrained(model_cfg)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    # init_weights() logs every parameter at INFO level: keep it quiet
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model.to(device)


def _num_classes(cfg) -> int:
    """The first ``num_classes`` in a model config (the head's)."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('num_classes'), int):
            return cfg['num_classes']
        values = cfg.values()
    elif isinstance(cfg, (list, tuple)):
        values = cfg
    else:
        return 0
    for value in values:
        found = _num_classes(value)
        if found:
            return found
    return 0


def _is_segmentor(model: nn.Module) -> bool:
    return hasattr(model, 'decode_head')


def _with_mask(model: nn.Module) -> bool:
    roi_head = getattr(model, 'roi_head', None)
    return bool(getattr(roi_head, 'with_mask', False))


def synthetic_batch(model: nn.Module, size: Tuple[int, int], batch: int,
                    num_classes: int, seed: int = 0, num_objects: int = 8) -> dict:
    """A batch of random images of ``size`` (H, W) with random annotations.

    Detectors get ``num_objects`` boxes per image (sides 4-40 % of the image)
    with labels, plus an ellipse mask inside each box when the model has a
    mask head; segmentors get a label map of random rectangles. The dict is
    what a data loader yields, for ``model.train_step`` / ``test_step``.
    """
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1 (read from the config), got {num_classes}')
    h, w = size
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                scale_factor=(1.0, 1.0), flip=False, flip_direction=None)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=gen, dtype=torch.uint8))
        if _is_segmentor(model):
            samples.append(_seg_sample(meta, h, w, num_classes, rng))
        else:
            samples.append(_det_sample(meta, h, w, num_classes, rng, num_objects,
                                       _with_mask(model)))
    return dict(inputs=inputs, data_samples=samples)


def _det_sample(meta, h, w, num_classes, rng, num_objects, with_mask):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    bw = rng.uniform(0.04, 0.4, num_objects) * w
    bh = rng.uniform(0.04, 0.4, num_objects) * h
    x1 = rng.uniform(0, 1, num_objects) * (w - bw)
    y1 = rng.uniform(0, 1, num_objects) * (h - bh)
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1).astype(np.float32)
    instances = InstanceData()
    instances.bboxes = torch.from_numpy(boxes)
    instances.labels = torch.from_numpy(rng.integers(0, num_classes, num_objects))
    if with_mask:
        masks = np.zeros((num_objects, h, w), dtype=np.uint8)
        yy, xx = np.mgrid[0:h, 0:w]
        for i, (a, b, c, d) in enumerate(boxes):
            cx, cy, rx, ry = (a + c) / 2, (b + d) / 2, max((c - a) / 2, 1), max((d - b) / 2, 1)
            masks[i] = ((xx - cx)**2 / rx**2 + (yy - cy)**2 / ry**2) <= 1
        instances.masks = BitmapMasks(masks, h, w)
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = instances
    return sample


def _seg_sample(meta, h, w, num_classes, rng):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    label = np.full((h, w), rng.integers(num_classes), dtype=np.int64)
    for _ in range(6):
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        label[y0:y0 + rng.integers(1, h // 2 + 2), x0:x0 + rng.integers(1, w // 2 + 2)] = \
            rng.integers(num_classes)
    sample = SegDataSample(metainfo=dict(meta, reduce_zero_label=False))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None])
    return sample


def _seconds(fn: Callable[[], object], cuda: bool) -> float:
    """Seconds of one call of ``fn``: CUDA events around it (synchronised) on a GPU, wall
    time on the CPU."""
    if not cuda:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def time_call(fn: Callable[[], object], device: str, iters: int = 5,
              warmup: int = 2) -> Tuple[float, Optional[int]]:
    """Median seconds of ``fn()`` over ``iters`` calls after ``warmup``, and peak bytes.

    CUDA: timed with CUDA events around each call (synchronised), peak from
    ``torch.cuda.max_memory_allocated`` over the timed calls (everything held,
    parameters, gradients and optimizer state included). CPU: wall time, and
    no peak (``None``): PyTorch keeps no CPU allocation counter.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters must be >= 1 and warmup >= 0, got iters={iters} warmup={warmup}')
    cuda = torch.device(device).type == 'cuda'
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = [_seconds(fn, cuda) for _ in range(iters)]
    peak = torch.cuda.max_memory_allocated(device) if cuda else None
    return statistics.median(times), peak


def _gb(value: Optional[int]) -> Optional[float]:
    return None if value is None else value / 2**30


def measure_cost(entry: CostEntry, device: str = 'cpu', iters: int = 5,
                 warmup: int = 2, seed: int = 0) -> Dict:
    """Seconds per iteration and peak GB of one config, in training and in inference.

    Training is the runner's iteration, ``model.train_step(batch,
    optim_wrapper)`` with the config's own optimizer; inference is
    ``model.test_step(batch)`` under ``no_grad`` (segmentors in ``whole``
    mode: one forward of the crop, not a sliding window over a full image).
    """
    cfg = load_model_config(entry['config'], entry.get('cfg_options'))
    model = build_model(cfg, device)
    num_classes = _num_classes(cfg.model)
    batch = synthetic_batch(model, entry['size'], entry['batch'], num_classes, seed=seed)
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    params = sum(p.numel() for p in model.parameters())

    model.train()
    losses = {}

    def train():
        losses.update(model.train_step(batch, optim_wrapper))

    train_s, train_peak = time_call(train, device, iters, warmup)
    loss = float(losses['loss'])
    del optim_wrapper
    for p in model.parameters():
        p.grad = None
    if torch.device(device).type == 'cuda':
        torch.cuda.empty_cache()

    model.eval()
    if _is_segmentor(model):
        model.test_cfg = ConfigDict(mode='whole')

    def infer():
        with torch.no_grad():
            model.test_step(batch)

    infer_s, infer_peak = time_call(infer, device, iters, warmup)
    del model
    if torch.device(device).type == 'cuda':
        torch.cuda.empty_cache()
    return dict(paper=entry['paper'], name=entry['name'],
                config=osp.basename(entry['config']),
                input=f"{entry['batch']}x{entry['size'][0]}x{entry['size'][1]}",
                device=device, params_m=params / 1e6, train_s=train_s,
                train_gb=_gb(train_peak), infer_s=infer_s, infer_gb=_gb(infer_peak),
                loss=loss, baseline=entry['baseline'], claim=entry['claim'])


def add_overheads(rows: List[Dict]) -> List[Dict]:
    """Add ``*_overhead`` (%, over the paper's baseline row listed before it) to each row.

    A row's baseline is the closest preceding row of the same paper marked
    ``baseline``; baseline rows get 0. Missing figures (CPU memory, failed
    rows) give ``None``.
    """
    baseline = {}
    for row in rows:
        if row.get('baseline'):
            baseline[row['paper']] = row
        base = baseline.get(row['paper'])
        for key in ('train_s', 'train_gb', 'infer_s', 'infer_gb'):
            value, ref = row.get(key), (base or {}).get(key)
            row[key + '_overhead'] = (100.0 * (value - ref) / ref
                                      if value is not None and ref else None)
    return rows


def amp_check(entry: CostEntry, device: str = 'cpu', dtype: Optional[str] = None,
              max_tries: int = 8, seed: int = 0) -> Dict:
    """One mixed-precision training iteration of a config; are loss and gradients finite?

    CUDA: ``dtype`` defaults to float16 with mmengine's ``AmpOptimWrapper``
    (dynamic ``GradScaler``, as ``tools/train.py --amp``). The scaler starts
    at 2^16, where fp16 gradients may overflow; the scaler then skips the step
    and halves the scale, as in real training, so up to ``max_tries``
    iterations are run until one has finite unscaled gradients. CPU: bfloat16
    autocast (no scaler: bf16 has fp32's range) with the config's own wrapper.

    Returns ``ok`` (finite loss and gradients), the loss, the number of
    iterations run, the final loss scale and the error text if one was raised.
    """
    from mmengine.runner.amp import autocast
    cuda = torch.device(device).type == 'cuda'
    dtype = dtype or ('float16' if cuda else 'bfloat16')
    if dtype not in ('float16', 'bfloat16'):
        raise ValueError(f"dtype must be 'float16' or 'bfloat16', got {dtype!r}")
    result = dict(paper=entry['paper'], name=entry['name'],
                  config=osp.basename(entry['config']), device=device, dtype=dtype,
                  ok=False, loss=None, tries=0, loss_scale=None, error='')
    try:
        cfg = load_model_config(entry['config'], entry.get('cfg_options'))
        model = build_model(cfg, device)
        batch = synthetic_batch(model, entry['size'], entry['batch'], _num_classes(cfg.model),
                                seed=seed)
        wrapper_cfg = copy.deepcopy(cfg.optim_wrapper)
        if cuda:
            wrapper_cfg.update(type='AmpOptimWrapper', dtype=dtype, loss_scale='dynamic')
        optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
        scaler = getattr(optim_wrapper, 'loss_scaler', None)
        model.train()
        for attempt in range(1, max_tries + 1):
            result['tries'] = attempt
            with optim_wrapper.optim_context(model), \
                    autocast(device_type='cuda' if cuda else 'cpu', dtype=getattr(torch, dtype)):
                data = model.data_preprocessor(batch, True)
                losses = model._run_forward(data, mode='loss')
            loss, _ = model.parse_losses(losses)
            result['loss'] = float(loss)
            if not torch.isfinite(loss):
                result['error'] = 'loss is not finite'
                break
            optim_wrapper.backward(loss)
            if scaler is not None:
                scaler.unscale_(optim_wrapper.optimizer)
                result['loss_scale'] = float(scaler.get_scale())
            bad = [name for name, p in model.named_parameters()
                   if p.grad is not None and not torch.isfinite(p.grad).all()]
            if scaler is not None:
                scaler.step(optim_wrapper.optimizer)   # skipped when gradients overflowed
                scaler.update()
            else:
                optim_wrapper.step()
            optim_wrapper.zero_grad()
            if not bad:
                result['ok'] = True
                result['error'] = ''
                break
            result['error'] = (f'{len(bad)} parameter gradients not finite, e.g. {bad[0]}')
            if scaler is None:
                break
    except Exception as exc:  # a config that cannot run in mixed precision is a result
        result['error'] = f'{type(exc).__name__}: {exc}'.splitlines()[0][:300]
    if cuda:
        torch.cuda.empty_cache()
    return result
