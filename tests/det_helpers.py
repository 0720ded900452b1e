"""Shared helpers of the detection tests: build a config's model, run one step."""
import glob
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def det_configs(paper):
    """The detection / instance / panoptic configs of ``configs/<paper>/``."""
    paths = sorted(glob.glob(osp.join(CONFIGS, paper, '*.py')))
    return [p for p in paths
            if Config.fromfile(p).get('default_scope', 'mmdet') == 'mmdet']


def check_test_dev_config(path):
    """A ``*-test-dev.py`` config is its twin's model, training and validation, tested on
    COCO test-dev (``image_info_test-dev2017.json``, ``test2017/``) with ``format_only``."""
    cfg = Config.fromfile(path)
    val = Config.fromfile(path.replace('-test-dev.py', '.py'))
    for key in ('model', 'train_dataloader', 'val_dataloader', 'val_evaluator', 'optim_wrapper',
                'param_scheduler', 'train_cfg'):
        assert cfg[key] == val[key], key
    dataset = cfg.test_dataloader.dataset
    assert dataset.ann_file == 'annotations/image_info_test-dev2017.json'
    assert dataset.data_prefix.img == 'test2017/'
    assert dataset.pipeline == val.test_dataloader.dataset.pipeline
    assert cfg.test_evaluator.type == 'CocoMetric' and cfg.test_evaluator.format_only
    assert cfg.test_evaluator.ann_file == dataset.data_root + dataset.ann_file
    assert cfg.test_evaluator.metric == val.test_evaluator.metric
    return cfg


def build_detector(path, **cfg_options):
    """The config's model on the CPU: no pretrained weights (test only), BN not synced."""
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    return revert_sync_batchnorm(MODELS.build(cfg.model)), cfg


def step_exemptions(cfg):
    """Patterns of the trainable parameters that one :func:`train_step` on 128 px images
    leaves without a gradient by construction (for ``layer_helpers.assert_every_gradient``):

    - FCOS multiplies each level's box regression by a learnt scale, and the regression loss
      reaches only levels with a positive location; a location goes to the level whose
      regress range ((-1, 64), (64, 128), (128, 256), ...) holds its largest distance to the
      box sides, under 128 px in a 128 px image: the scales of P5-P7 get none.
    - Cascade R-CNN's RPN ignores anchors that cross the image (``allowed_border=0``); at
      128 px every anchor of P4 and up (128, 256, 512 px) does, and RoIs under 112 px are
      pooled from P2 / P3 (``finest_scale`` 56): with a plain FPN no loss reaches the P4 / P5
      output convs.
    """
    model = cfg.model
    if model.type == 'FCOS':
        return (r'bbox_head\.scales\.[234]\.scale', )
    if (model.type == 'CascadeRCNN' and isinstance(model.neck, dict) and model.neck.type == 'FPN'
            and model.train_cfg.rpn.get('allowed_border', -1) == 0):
        return (r'neck\.fpn_convs\.[23]\..+', )  # conv (and its norm in '-syncbn-all')
    return ()


def train_step(model, size=128, batch=2):
    """One forward + backward on ``batch`` random images with boxes (and masks)."""
    from mmdet.testing import demo_mm_inputs
    name = type(model).__name__
    panoptic = 'Panoptic' in name
    with_mask = panoptic or hasattr(model, 'roi_head') and getattr(
        model.roi_head, 'with_mask', False)
    num_classes = 80
    packed = demo_mm_inputs(batch, image_shapes=[(3, size, size)] * batch,
                            num_items=[3] * batch, num_classes=num_classes,
                            with_mask=with_mask, with_semantic=panoptic)
    if panoptic:  # semantic labels within things + stuff classes
        for sample in packed['data_samples']:
            sample.gt_sem_seg.sem_seg = sample.gt_sem_seg.sem_seg.clamp(max=132)
    model.train()
    data = model.data_preprocessor(packed, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    loss, _ = model.parse_losses(losses)
    loss.backward()
    return loss



def fpn_inputs(channels=(8, 16, 32, 64), size=32):
    """Four seeded feature levels of a batch of 2, halving from ``size``: a neck's input."""
    torch.manual_seed(1)
    return [torch.randn(2, c, size // 2**i, size // 2**i)
            for i, c in enumerate(channels)]
