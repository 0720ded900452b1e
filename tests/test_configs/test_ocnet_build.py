"""Every OCNet (Yuan et al.) segmentation config (configs/ocnet/, default_scope
mmseg): built from the file, one forward + backward on two 64x64 crops on the CPU,
its trainable parameters equal to the ``Parameters (M)`` of its entry in
configs/ocnet/metafile.yml (which the README's tables show).

Pretrained weights are switched off here only; SyncBN becomes BN on the CPU. Which
configs exist, each one's settings against its paper row and the training setting
of §4.2 are checked in tests/test_configs/test_ocnet.py.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmctx  # noqa: F401
from mmctx.utils.metafile import metafile_models
from layer_helpers import assert_every_gradient, randomise_zeros
from seg_helpers import SingleKeyRelations
from seg_helpers import build_segmentor as build
from seg_helpers import train_step as one_step

pytestmark = pytest.mark.usefixtures('mmseg_scope')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'ocnet')
#: the segmentation entries of the metafile (test_ocnet checks: one per config, scope mmseg)
ENTRIES = {name: m['Metadata'] for name, m in metafile_models('ocnet').items()
           if m['Metadata']['Task'] == 'Semantic Segmentation'}
PATHS = [osp.join(CONFIG_DIR, name) for name in sorted(ENTRIES)]


@pytest.mark.parametrize('path', PATHS, ids=osp.basename)
def test_config_builds_and_trains_one_step(path):
    model, cfg = build(path)
    assert cfg.custom_imports == dict(imports=['mmctx'], allow_failed_imports=False)
    # the paper's training setting (§4.2) is in the file (test_ocnet: the rest of it)
    assert cfg.norm_cfg.type == 'SyncBN'
    assert cfg.model.auxiliary_head.loss_decode.loss_weight == 0.4
    assert cfg.param_scheduler[0].power == 0.9
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert params / 1e6 == pytest.approx(ENTRIES[osp.basename(path)]['Parameters (M)'],
                                         abs=0.006)
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    with SingleKeyRelations(model) as single:
        loss = one_step(model)
    assert torch.isfinite(loss)
    # on the 8x8 map of a 64 px crop, ISA's 8x8 groups leave one position per global
    # group: that relation's softmax is 1 whatever q and k are (no gradient to them)
    assert_every_gradient(model, exempt=single.exemptions())


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
    train = cfg.train_dataloader.dataset
    datasets = train.datasets if train.type == 'ConcatDataset' else [train]
    with DefaultScope.overwrite_default_scope('mmseg'):
        for pipeline in [d.pipeline for d in datasets] + [cfg.test_dataloader.dataset.pipeline,
                                                          cfg.tta_pipeline]:
            assert len(Compose(pipeline).transforms) == len(pipeline)
    jitter = [t for t in datasets[0].pipeline if t.type == 'PhotoMetricDistortion'][0]
    assert jitter.brightness_delta == 10 and jitter.hue_delta == 0  # brightness only
