"""Cao et al. (GCNet) §5.4, Tables 12-13 (configs/gcnet, Cityscapes 769x769, R-101-D8).

Every config builds and runs one forward + backward on two 64x64 crops on the CPU (pretrained
weights off here only, SyncBN as BN); the seed's training setting is asserted from the file;
the parameter overhead of every Table 12 row over the baseline matches the paper's #params
within 5 %; the README's "Our params" column is the count of the built model.
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import zoo_helpers
from seg_helpers import CONFIGS, build_segmentor, seg_configs, train_step

GCNET = osp.join(CONFIGS, 'gcnet')
PATHS = seg_configs('gcnet')
SUFFIX = '_4xb2-60k_cityscapes-769x769.py'
BASELINE = 'fcn-concat_r101-d8' + SUFFIX
GCB = '-gcb-r4-c3-c5'

# Cao et al. (GCNet) Tables 12-13: config -> paper #params (M)
PAPER_PARAMS = {
    BASELINE: 70.96,
    'nl-head_r101-d8' + SUFFIX: 71.22,
    'snl-head_r101-d8' + SUFFIX: 71.22,
    'gc-head-att-add_r101-d8' + SUFFIX: 71.09,
    'gc-head-att-scale_r101-d8' + SUFFIX: 71.09,
    'gc-head-avg-add_r101-d8' + SUFFIX: 71.09,
    'gc-head-avg-scale_r101-d8' + SUFFIX: 71.09,
    'fcn-concat_r101-d8' + GCB + SUFFIX: 89.92,
    'gc-head-att-add_r101-d8' + GCB + SUFFIX: 90.05,
    'danet_r101-d8' + SUFFIX: 71.29,
    'ann_r101-d8' + SUFFIX: 67.89,
    'ccnet_r101-d8' + SUFFIX: 71.49,
}
# Table 4: the NL head with each pairwise function (no #params printed)
TABLE4 = {'nl-head-gaussian_r101-d8' + SUFFIX: 'gaussian',
          'nl-head_r101-d8' + SUFFIX: 'embedded_gaussian',
          'nl-head-dot_r101-d8' + SUFFIX: 'dot_product',
          'nl-head-concat_r101-d8' + SUFFIX: 'concatenation'}
TABLE13 = ('danet_r101-d8' + SUFFIX, 'ann_r101-d8' + SUFFIX, 'ccnet_r101-d8' + SUFFIX)
TABLE12 = [n for n in PAPER_PARAMS if n != BASELINE and n not in TABLE13]


def readme_params():
    """{config: our params in M} from the README's "Semantic segmentation" table."""
    return zoo_helpers.readme_params('gcnet', 'Semantic segmentation')


_PARAMS = {}


def params(name):
    """All parameters of the built segmentor (auxiliary head included), cached."""
    if name not in _PARAMS:
        model, _ = build_segmentor(osp.join(GCNET, name))
        _PARAMS[name] = sum(p.numel() for p in model.parameters())
    return _PARAMS[name]


def test_every_table_row_has_a_config_and_a_readme_row():
    assert sorted(osp.basename(p) for p in PATHS) == sorted(set(PAPER_PARAMS) | set(TABLE4))
    assert set(readme_params()) == set(PAPER_PARAMS) | set(TABLE4)


@pytest.mark.parametrize('name', sorted(TABLE4))
def test_table4_instantiations(name):
    """Table 4: the four pairwise functions of the NL head, nothing else changed."""
    cfg = Config.fromfile(osp.join(GCNET, name))
    ref = Config.fromfile(osp.join(GCNET, 'nl-head_r101-d8' + SUFFIX))
    context = cfg.model.decode_head.context_cfg
    assert context.type == 'NonLocal2dBlock' and context.mode == TABLE4[name]
    assert context.reduction == 4
    cfg.model.decode_head.context_cfg.mode = 'embedded_gaussian'
    assert cfg.model.to_dict() == ref.model.to_dict()


@pytest.mark.parametrize('path', PATHS, ids=osp.basename)
def test_config_one_step(path):
    model, cfg = build_segmentor(path)
    assert cfg.custom_imports.imports == ['mmctx']
    loss = train_step(model, size=64, batch=2)
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.decode_head.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    n = sum(p.numel() for p in model.parameters())
    assert n / 1e6 == pytest.approx(readme_params()[osp.basename(path)], abs=0.006)


@pytest.mark.parametrize('path', PATHS, ids=osp.basename)
def test_training_setting_of_the_paper(path):
    """§5.4: 769x769 crops of images scaled by [0.5, 2], 4 GPUs x 2 images, SyncBN, SGD lr 0.01
    poly 0.9, 60k steps, dilated R-101 (output stride 8), auxiliary head on c4."""
    cfg = Config.fromfile(path)
    assert tuple(cfg.model.data_preprocessor.size) == (769, 769)
    pipeline = cfg.train_dataloader.dataset.pipeline
    crop = [t for t in pipeline if t.type == 'RandomCrop']
    assert len(crop) == 1 and tuple(crop[0].crop_size) == (769, 769)
    resize = [t for t in pipeline if t.type == 'RandomResize']
    assert len(resize) == 1 and tuple(resize[0].ratio_range) == (0.5, 2.0)
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.optim_wrapper.optimizer.type == 'SGD'
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert len(cfg.param_scheduler) == 1
    poly = cfg.param_scheduler[0]
    assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 0.9, 0.0, 60000)
    assert cfg.train_cfg.max_iters == 60000
    backbone = cfg.model.backbone
    assert backbone.type == 'ResNetV1c' and backbone.depth == 101
    assert tuple(backbone.strides) == (1, 2, 1, 1) and tuple(backbone.dilations) == (1, 1, 2, 4)
    for part in (backbone, cfg.model.decode_head, cfg.model.auxiliary_head):
        assert part.norm_cfg.type == 'SyncBN'
    assert cfg.model.auxiliary_head.in_index == 2  # c4
    # 769 = 8 * 96 + 1 crops: corner-aligned resizing in every head, as mmseg's 769 configs
    assert cfg.model.decode_head.align_corners and cfg.model.auxiliary_head.align_corners
    assert cfg.model.pretrained == 'open-mmlab://resnet101_v1c'
    name = osp.basename(path)
    head = cfg.model.decode_head
    assert head.num_classes == 19
    if name in TABLE13:
        assert head.type == {'danet': 'DAHead', 'ann': 'ANNHead',
                             'ccnet': 'CCHead'}[name.split('_')[0]]
    else:
        assert head.type == 'ContextBlockHead' and head.concat_input  # Table 13 "†"
        assert head.channels == 512
    if GCB in name:
        plugin, = backbone.plugins
        assert plugin.cfg == dict(type='GlobalContextBlock', ratio=4)
        assert tuple(plugin.stages) == (False, True, True, True)
        assert plugin.position == 'after_conv3'
    else:
        assert not backbone.get('plugins')


@pytest.mark.parametrize('name', TABLE12)
def test_table12_overhead_over_baseline(name):
    """Table 12: #params of each row minus the 70.96 M baseline, matched within 5 %."""
    paper = (PAPER_PARAMS[name] - PAPER_PARAMS[BASELINE]) * 1e6
    ours = params(name) - params(BASELINE)
    assert abs(ours - paper) <= 0.05 * paper, (ours, paper)


def test_gc_backbone_blocks():
    """GC backbone: one r = 4 GC block after every bottleneck of c3 (4), c4 (23), c5 (3)."""
    from mmctx.models.layers import GlobalContextBlock
    model, _ = build_segmentor(osp.join(GCNET, 'fcn-concat_r101-d8' + GCB + SUFFIX))
    blocks = [m for m in model.backbone.modules() if isinstance(m, GlobalContextBlock)]
    widths = [b.in_channels for b in blocks]
    assert widths == [512] * 4 + [1024] * 23 + [2048] * 3
    assert all(b.hidden_channels == b.in_channels // 4 for b in blocks)
    # 2 C^2 / r transform weights per block (§4.2) plus W_k, biases and layer norm
    expected = sum(2 * c * c // 4 + c + (c // 4 + c) + 2 * (c // 4) for c in widths)
    assert sum(p.numel() for b in blocks for p in b.parameters()) == expected
