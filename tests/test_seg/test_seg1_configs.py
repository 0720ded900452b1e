"""Every OCNet (Yuan et al.) segmentation config (configs/ocnet/, default_scope
mmseg): built from the file, one forward + backward on two 64x64 crops on the CPU.

Pretrained weights are switched off here only; SyncBN becomes BN on the CPU.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmctx  # noqa: F401
from seg_helpers import build_segmentor as build
from seg_helpers import seg_configs
from seg_helpers import train_step as one_step
from zoo_helpers import readme_params

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'ocnet')
PATHS = seg_configs('ocnet')
NAMES = {osp.basename(p) for p in PATHS}

CS = '_r101-d8_4xb2-60k_cityscapes-512x1024.py'
ADE = '_r50-d8_4xb4-150k_ade20k-520x520.py'
SOTA = ('4xb2-100k-ohem_cityscapes-trainval-512x1024', '4xb4-150k_ade20k-520x520',
        '4xb4-30k_pascal-context-59-520x520', '4xb8-100k_lip-473x473',
        '4xb4-60k_coco-stuff10k-520x520')
EXPECTED = (
    # Table 1: group numbers and order
    [f'baseoc-isa{g}{CS}' for g in ('', '-g4x4', '-g4x8', '-g8x4', '-g8x16', '-g16x8',
                                     '-g16x16', '-localglobal', '-global', '-local')]
    # Tables 2 and 5
    + [m + CS for m in ('dilated', 'ppm', 'aspp', 'baseoc-sa', 'pyramidoc-sa', 'pyramidoc-isa',
                        'aspoc-sa', 'aspoc-isa')]
    + [m + ADE for m in ('dilated', 'ppm', 'aspp', 'baseoc-sa', 'baseoc-isa')]
    # Table 3
    + [m + CS for m in ('baseoc-sa2x', 'rcca', 'cgnl', 'efficient-attention')]
    # Tables 7-11
    + [f'{h}_{b}_{t}.py' for h in ('baseoc-isa', 'aspoc-isa') for b in ('r101-d8', 'hr48')
       for t in SOTA])


README_PARAMS = readme_params('ocnet', 'Semantic segmentation')


def test_every_table_row_has_a_config():
    missing = sorted(set(EXPECTED) - NAMES)
    assert not missing, missing
    assert len(EXPECTED) == len(set(EXPECTED)) == 47
    assert set(README_PARAMS) == set(EXPECTED)  # the README lists every row once


@pytest.mark.parametrize('path', PATHS, ids=osp.basename)
def test_config_builds_and_trains_one_step(path):
    model, cfg = build(path)
    assert cfg.custom_imports == dict(imports=['mmctx'], allow_failed_imports=False)
    # the paper's training setting (§4.2) is in the file, not only in the README
    assert cfg.norm_cfg.type == 'SyncBN'
    assert cfg.model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert cfg.param_scheduler[0].power == 0.9
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert params / 1e6 == pytest.approx(README_PARAMS[osp.basename(path)], abs=0.006)
    loss = one_step(model)
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.decode_head.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)


SETTINGS = {  # §4.2: lr, weight decay, crop, total batch (4 GPUs), iterations
    'cityscapes-512x1024': (0.01, 5e-4, (512, 1024), 8, 60000),
    'cityscapes-trainval-512x1024': (0.01, 5e-4, (512, 1024), 8, 100000),
    'ade20k-520x520': (0.02, 1e-4, (520, 520), 16, 150000),
    'lip-473x473': (0.007, 5e-4, (473, 473), 32, 100000),
    'pascal-context-59-520x520': (0.001, 1e-4, (520, 520), 16, 30000),
    'coco-stuff10k-520x520': (0.001, 1e-4, (520, 520), 16, 60000),
}


@pytest.mark.parametrize('path', PATHS, ids=osp.basename)
def test_training_setting_of_the_paper(path):
    cfg = Config.fromfile(path)
    data = osp.basename(path)[:-3].split('_')[-1]
    lr, wd, crop, batch, iters = SETTINGS[data]
    assert cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.optim_wrapper.optimizer.weight_decay == wd
    assert tuple(cfg.model.data_preprocessor.size) == crop
    assert 4 * cfg.train_dataloader.batch_size == batch
    assert cfg.train_cfg.max_iters == iters == cfg.param_scheduler[0].end
    crops = [t for t in cfg.train_dataloader.dataset.get('pipeline', []) if t.type == 'RandomCrop']
    for t in crops:
        assert tuple(t.crop_size) == crop
    if 'hr48' in path:
        assert cfg.model.backbone.type == 'HRNet'
        assert cfg.model.pretrained == 'open-mmlab://msra/hrnetv2_w48'
    else:
        assert cfg.model.backbone.type == 'ResNetV1c'
        assert cfg.model.backbone.strides[-2:] == (1, 1)  # output stride 8
    if 'ohem' in path:
        assert cfg.model.decode_head.sampler.type == 'OHEMPixelSampler'
    if data == 'cityscapes-512x1024':  # Table 6 boundary F-score, Table 4 style fwIoU
        assert cfg.val_evaluator.type == 'FWIoUMetric'
        assert tuple(cfg.val_evaluator.bf_tolerances) == (3, 5, 9, 12)


def test_lip_flip_swaps_left_and_right():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'baseoc-isa_r101-d8_4xb8-100k_lip-473x473.py'))
    flip = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomFlip'][0]
    names = cfg.metainfo.classes
    assert len(names) == 20
    for a, b in flip.swap_seg_labels:
        assert names[a].replace('Left', 'Right') == names[b]


@pytest.mark.parametrize('path', [p for p in PATHS if osp.basename(p).startswith('baseoc-isa_')],
                         ids=osp.basename)
def test_pipelines_build(path):
    """Train, test and multi-scale(+flip) test-time pipelines of every data set build."""
    from mmcv.transforms import Compose
    cfg = Config.fromfile(path)
    init_default_scope('mmseg')
    train = cfg.train_dataloader.dataset
    datasets = train.datasets if train.type == 'ConcatDataset' else [train]
    for pipeline in [d.pipeline for d in datasets] + [cfg.test_dataloader.dataset.pipeline,
                                                      cfg.tta_pipeline]:
        assert len(Compose(pipeline).transforms) == len(pipeline)
    jitter = [t for t in datasets[0].pipeline if t.type == 'PhotoMetricDistortion'][0]
    assert jitter.brightness_delta == 10 and jitter.hue_delta == 0  # brightness only


TABLE1 = {  # row suffix: (order, groups) of the ISA
    '': ('global_local', (8, 8)), '-g4x4': ('global_local', (4, 4)),
    '-g4x8': ('global_local', (4, 8)), '-g8x4': ('global_local', (8, 4)),
    '-g8x16': ('global_local', (8, 16)), '-g16x8': ('global_local', (16, 8)),
    '-g16x16': ('global_local', (16, 16)), '-localglobal': ('local_global', (8, 8)),
    '-global': ('global', (8, 8)), '-local': ('local', (8, 8)),
}


@pytest.mark.parametrize('suffix', sorted(TABLE1))
def test_table1_rows_build_their_isa_order_and_groups_as_released(suffix):
    """Table 1 and the §4.3 single-relation ablations: each row's ISA has its
    order and groups and is the authors' released block (variant='official')."""
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'baseoc-isa{suffix}{CS}'))
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    head_cfg = dict(cfg.model.decode_head, in_channels=16, channels=8,
                    norm_cfg=dict(type='BN'))
    isa = MODELS.build(head_cfg).ocp.attention
    order, groups = TABLE1[suffix]
    assert (isa.order, isa.groups, isa.variant) == (order, groups, 'official')
    assert [s for s in ('global', 'local') if isa.relation(s) is not None] == \
        sorted(order.split('_'), key=('global', 'local').index)


@pytest.mark.parametrize('path', [p for p in PATHS if 'oc-' in osp.basename(p)],
                         ids=osp.basename)
def test_every_ocnet_head_is_the_released_variant(path):
    """The OCNet rows report the authors' released code: every OCNet head config
    (Base-OC, Pyramid-OC, ASP-OC; SA or ISA) sets variant='official'."""
    assert Config.fromfile(path).model.decode_head.variant == 'official'
