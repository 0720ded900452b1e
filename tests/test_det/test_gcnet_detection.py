"""Cao et al., Global Context Networks, §5.1: the COCO detection / instance rows
of Tables 5-7, and the models whose block statistics Tables 1-3 report (one
non-local block of each instantiation before the last block of c4, and an
Embedded Gaussian one at each of c3-c5).

Every mmdet config of ``configs/gcnet/`` is built at full size and trains one
step on two 128 px images (fewer RoIs, in the test only). Parameters are all
parameters of the built detector, frozen ones included: that is the
convention of Table 5's 44.4 M Mask R-CNN R-50 baseline (mmdet's config
measures 44.40 M). The settings of §5.1 (SyncBN, 800 px, 16 images, lr 0.02,
1x / 2x / 3x) are checked on the configs.
"""
import os.path as osp
import re

import pytest
import torch

import zoo_helpers
from det_helpers import build_detector, check_test_dev_config, det_configs, train_step

ALL_CONFIGS = det_configs('gcnet')
NAMES = {osp.basename(p) for p in ALL_CONFIGS}
# Table 7(b): the 7(a) models evaluated on test-dev (their model is their 7(a) config's)
TEST_DEV = [p for p in ALL_CONFIGS if p.endswith('-test-dev.py')]
GCNET_CONFIGS = [p for p in ALL_CONFIGS if p not in TEST_DEV]

R50 = 'mask-rcnn_r50-syncbn{}_fpn_1x_coco.py'
R50_GC16, R50_GC4 = R50.format('-gcb-r16-c3-c5'), R50.format('-gcb-r4-c3-c5')
FIX = 'mask-rcnn_r50{}_fpn_1x_coco.py'
ALL4 = 'mask-rcnn_r50-syncbn{}_fpn-4conv1fc-syncbn-all_1x_coco.py'
R50_2X = 'mask-rcnn_r50-syncbn{}_fpn_2x_coco.py'
R101 = 'mask-rcnn_r101-syncbn{}_fpn_1x_coco.py'
X101 = 'mask-rcnn_x101-32x4d-syncbn{}_fpn_1x_coco.py'
CAS = 'cascade-mask-rcnn_x101-32x4d-syncbn{}_fpn_1x_coco.py'
DCN = 'cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5{}_fpn_1x_coco.py'
BEST = ('cascade-mask-rcnn_x101-64x4d-syncbn-dconv-c3-c5-gcb-r4-c3-c5_'
        'fpn-4conv1fc-syncbn-all_ms-3x_coco.py')
BEST_ROW = 'X101-64x4d+DCN+Cascade+4conv1fc+ms 3x'
GC3 = ('', '-gcb-r16-c3-c5', '-gcb-r4-c3-c5')  # baseline, +GC r16, +GC r4

# (table, row) -> config; a config used by several rows is listed each time
ROWS = {
    ('1', 'Gaussian'): R50.format('-1nl-gaussian-c4'),
    ('1', 'E-Gaussian'): R50.format('-1nl-c4'),
    ('1', 'Dot product'): R50.format('-1nl-dot-c4'),
    ('1', 'Concat'): R50.format('-1nl-concat-c4'),
    ('2', 'c3'): R50.format('-1nl-c3'),
    ('2', 'c4'): R50.format('-1nl-c4'),
    ('2', 'c5'): R50.format('-1nl-c5'),
    ('3', 'E-Gaussian'): R50.format('-1nl-c4'),
    ('3', 'Gaussian'): R50.format('-1nl-gaussian-c4'),
    ('5a', 'baseline'): R50.format(''),
    ('5a', '+1 NL'): R50.format('-1nl-c4'),
    ('5a', '+1 SNL'): R50.format('-1snl-c4'),
    ('5a', '+1 GC'): R50.format('-1gcb-r16-c4'),
    ('5a', '+all GC'): R50_GC16,
    ('5b', 'afterAdd'): R50.format('-gcb-r16-c3-c5-after-add'),
    ('5b', 'after1x1'): R50_GC16,
    ('5c', 'c3'): R50.format('-gcb-r16-c3'),
    ('5c', 'c4'): R50.format('-gcb-r16-c4'),
    ('5c', 'c5'): R50.format('-gcb-r16-c5'),
    ('5c', 'c3+c4+c5'): R50_GC16,
    ('5d', 'w/o ratio'): R50.format('-gcb-wo-ratio-c3-c5'),
    ('5d', 'r16'): R50.format('-gcb-r16-noln-norelu-c3-c5'),
    ('5d', 'r16+ReLU'): R50.format('-gcb-r16-noln-c3-c5'),
    ('5d', 'r16+LN+ReLU'): R50_GC16,
    ('5e', 'ratio 4'): R50_GC4,
    ('5e', 'ratio 8'): R50.format('-gcb-r8-c3-c5'),
    ('5e', 'ratio 16'): R50_GC16,
    ('5e', 'ratio 32'): R50.format('-gcb-r32-c3-c5'),
    ('5f', 'avg+scale'): R50.format('-gcb-r16-avg-scale-c3-c5'),
    ('5f', 'avg+add'): R50.format('-gcb-r16-avg-add-c3-c5'),
    ('5f', 'att+scale'): R50.format('-gcb-r16-att-scale-c3-c5'),
    ('5f', 'att+add'): R50_GC16,
}
ROW3 = ('baseline', '+GC r16', '+GC r4')
for setting, fmt in (('fixBN, 2fc', FIX), ('syncBN, 2fc', R50),
                     ('syncBN, 4conv1fc syncBN', ALL4)):
    ROWS.update({('6a', f'{setting}: {r}'): fmt.format(gc)
                 for gc, r in zip(GC3, ROW3)})
ROWS.update({('6b', f'2x: {r}'): R50_2X.format(gc) for gc, r in zip(GC3, ROW3)})
SEVEN = (('R50', R50), ('R101', R101), ('X101', X101),
         ('X101+Cascade', CAS), ('X101+DCN+Cascade', DCN))
for table, models, suffix in (('7a', SEVEN, ''), ('7b', SEVEN[3:], '-test-dev')):
    for model, fmt in models:
        ROWS.update({(table, f'{model}: {r}'): fmt.format(gc).replace('.py', suffix + '.py')
                     for gc, r in zip(GC3, ROW3)})
    ROWS[(table, f'{BEST_ROW}: +GC r4')] = BEST.replace('.py', suffix + '.py')

# Table 5 #param (M, as printed: rounded to 0.1 M); unreadable cells left out
PAPER_PARAMS = {
    R50.format(''): 44.4,
    R50.format('-1snl-c4'): 45.4,
    R50.format('-1gcb-r16-c4'): 44.5,
    R50_GC16: 46.9,
    R50.format('-gcb-r16-c3'): 44.5,
    R50.format('-gcb-r16-c4'): 45.2,
    R50.format('-gcb-r16-c5'): 45.9,
    R50.format('-gcb-wo-ratio-c3-c5'): 64.4,
    R50.format('-gcb-r16-noln-norelu-c3-c5'): 46.9,
    R50.format('-gcb-r16-noln-c3-c5'): 46.9,
    R50.format('-gcb-r8-c3-c5'): 49.4,
    R50.format('-gcb-r32-c3-c5'): 45.7,
    R50.format('-gcb-r16-avg-scale-c3-c5'): 46.9,
    R50.format('-gcb-r16-avg-add-c3-c5'): 46.9,
    R50.format('-gcb-r16-att-scale-c3-c5'): 46.9,
}
PAPER_BASELINE = 44.4
# Table 8(a): the same blocks in an ImageNet ResNet-50 (25.56 M), overheads
# printed to 0.01 M: +1 NL 27.66, +1 SNL 26.61, +1 GC 25.69, +all GC 28.08
PAPER_BLOCK_OVERHEAD = {
    R50.format('-1nl-c4'): 2.10,
    R50.format('-1snl-c4'): 1.05,
    R50.format('-1gcb-r16-c4'): 0.13,
    R50_GC16: 2.52,
}
# blocks per stage c2..c5 of the ResNet / ResNeXt depths
STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
BLOCK_TYPES = ('GlobalContextBlock', 'SimplifiedNonLocal2d', 'NonLocal2dBlock')


def _blocks(model):
    """The context blocks of the backbone, by module name."""
    return {n: m for n, m in model.backbone.named_modules()
            if type(m).__name__ in BLOCK_TYPES}


def _expected_placement(name, depth):
    """(stage index, block index) pairs the row's name asks for."""
    one = re.search(r'-1(?:nl|snl|gcb)(?:-[a-z0-9]+)*-c(\d)_', name)
    if one:  # one block right before the stage's last block
        stage = int(one.group(1)) - 2
        return {(stage, STAGE_BLOCKS[depth][stage] - 2)}
    stages = {'-c3-c5': (1, 2, 3), '-c3_': (1, ), '-c4_': (2, ),
              '-c5_': (3, )}
    for key, idx in stages.items():
        if re.search(r'-gcb-.*' + re.escape(key), name):
            return {(s, b) for s in idx for b in range(STAGE_BLOCKS[depth][s])}
    return set()


def _placement(blocks):
    out = set()
    for n in blocks:
        m = re.match(r'layer(\d)\.(\d+)\.', n)
        assert m, f'context block outside a residual block: {n}'
        out.add((int(m.group(1)) - 1, int(m.group(2))))
    return out


def _check_block_args(name, block):
    kind = type(block).__name__
    if '-1nl-' in name:
        mode = re.search(r'-1nl(-gaussian|-dot|-concat)?-c', name).group(1)
        assert kind == 'NonLocal2dBlock'
        assert block.mode == {None: 'embedded_gaussian', '-gaussian': 'gaussian',
                              '-dot': 'dot_product', '-concat': 'concatenation'}[mode]
        assert block.inter_channels == block.in_channels // 2
        return
    if '-1snl-' in name:
        assert kind == 'SimplifiedNonLocal2d'
        return
    assert kind == 'GlobalContextBlock'
    ratio = re.search(r'gcb-r(\d+)', name)
    if 'wo-ratio' in name:
        assert not block.bottleneck and len(block.channel_add) == 1
        return
    assert block.hidden_channels == block.in_channels // int(ratio.group(1))
    assert block.pooling == ('avg' if '-avg-' in name else 'att')
    assert block.fusion == (('mul', ) if '-scale-' in name else ('add', ))
    assert block.norm == (None if '-noln' in name else 'LN')
    assert block.act == (None if '-norelu' in name else 'ReLU')


def _small_rois(path):
    """Test only: 64 proposals and 16 sampled RoIs per image (CPU time)."""
    opts = {'model.train_cfg.rpn_proposal.max_per_img': 64}
    if osp.basename(path).startswith('cascade'):
        for i in range(3):
            opts[f'model.train_cfg.rcnn.{i}.sampler.num'] = 16
    else:
        opts['model.train_cfg.rcnn.sampler.num'] = 16
    return opts


def test_every_table_row_has_a_config():
    assert len(ROWS) == 4 + 3 + 2 + 23 + 9 + 3 + 16 + 7  # 1, 2, 3, 5a-f, 6a, 6b, 7a, 7b
    missing = sorted(set(ROWS.values()) - NAMES)
    assert not missing, missing
    unused = sorted(n for n in NAMES - set(ROWS.values()))
    assert not unused, f'configs in no table row: {unused}'


def _readme_rows():
    """(table, row) -> (config, our params in M) of the README's section."""
    params = zoo_helpers.readme_params('gcnet', 'Detection')
    return {(cells['Table'], cells['Row']): (config, params[config])
            for config, cells in zoo_helpers.readme_rows('gcnet', 'Detection')
            if re.fullmatch(r'[123]|[567][a-f]', cells['Table'])}


README_ROWS = _readme_rows()
README_PARAMS = dict(README_ROWS.values())


@pytest.mark.parametrize('path', TEST_DEV, ids=osp.basename)
def test_test_dev_configs(path):
    """Table 7(b): the 7(a) config's model and training, tested on test-dev (format only)."""
    cfg = check_test_dev_config(path)
    assert list(cfg.test_evaluator.metric) == ['bbox', 'segm']


def test_readme_lists_every_row():
    assert {k: v[0] for k, v in README_ROWS.items()} == ROWS
    # a config listed twice gives the same params both times
    assert len(set(README_ROWS.values())) == len(README_PARAMS) == len(NAMES)


@pytest.mark.parametrize('path', GCNET_CONFIGS, ids=osp.basename)
def test_paper_setting(path):
    from mmengine.config import Config
    name = osp.basename(path)
    cfg = Config.fromfile(path)
    assert cfg.custom_imports.imports == ['mmctx']
    backbone = cfg.model.backbone
    assert backbone.depth == (50 if '_r50' in name else 101)
    if 'x101' in name:
        assert backbone.type == 'ResNeXt'
        assert (backbone.groups, backbone.base_width) == (
            (64, 4) if '64x4d' in name else (32, 4))
    # c1 and c2 frozen, the rest fine-tuned (§5.1)
    assert backbone.frozen_stages == 1
    if '-syncbn' in name:  # SyncBN with updated statistics in the backbone
        assert backbone.norm_cfg.type == 'SyncBN' and not backbone.norm_eval
    else:  # Table 6(a) fixBN: frozen statistics
        assert backbone.norm_cfg.type == 'BN' and backbone.norm_eval
    heads = cfg.model.roi_head.bbox_head
    heads = heads if isinstance(heads, list) else [heads]
    if 'syncbn-all' in name:  # Table 6(a): SyncBN heads, 4conv1fc box head
        assert cfg.model.neck.norm_cfg.type == 'SyncBN'
        assert cfg.model.roi_head.mask_head.norm_cfg.type == 'SyncBN'
        for h in heads:
            assert h.type == 'Shared4Conv1FCBBoxHead'
            assert h.norm_cfg.type == 'SyncBN'
    else:  # 2fc head without BN
        assert 'norm_cfg' not in cfg.model.neck
        assert all(h.type == 'Shared2FCBBoxHead' for h in heads)
    assert ('dcn' in backbone) == ('dconv-c3-c5' in name)
    if 'dcn' in backbone:
        assert backbone.stage_with_dcn == (False, True, True, True)
    assert cfg.model.type == ('CascadeRCNN' if name.startswith('cascade')
                              else 'MaskRCNN')
    # 16 images (8 GPUs x 2), lr 0.02, momentum 0.9, weight decay 1e-4
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.auto_scale_lr.base_batch_size == 16
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == (
        'SGD', 0.02, 0.9, 1e-4)
    # shorter side 800 (training: 640-800 for the multi-scale row)
    resize = [t for t in cfg.test_dataloader.dataset.pipeline
              if t.type == 'Resize']
    assert resize[0].scale == (1333, 800)
    train_pipeline = _train_pipeline(cfg)
    resize = [t for t in train_pipeline if 'Resize' in t.type][0]
    if '_ms-' in name:
        assert resize.type == 'RandomResize'
        assert list(map(tuple, resize.scale)) == [(1333, 640), (1333, 800)]
    else:
        assert (resize.type, resize.scale) == ('Resize', (1333, 800))
    # schedules: 1x = 12 epochs (decay at 8, 11), 2x = 24 (16, 22),
    # 3x = 3 repeats of the data set x 12 epochs (decay at 9, 11)
    step = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR'][0]
    sched = re.search(r'_(1x|2x|ms-3x)_', name).group(1)
    epochs, milestones = {'1x': (12, [8, 11]), '2x': (24, [16, 22]),
                          'ms-3x': (12, [9, 11])}[sched]
    assert cfg.train_cfg.max_epochs == epochs
    assert step.milestones == milestones
    repeat = cfg.train_dataloader.dataset.get('times', 1)
    assert repeat == (3 if sched == 'ms-3x' else 1)
    # box and mask AP
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'CocoMetric'
        assert list(evaluator.metric) == ['bbox', 'segm']


def _train_pipeline(cfg):
    ds = cfg.train_dataloader.dataset
    return ds.dataset.pipeline if ds.type == 'RepeatDataset' else ds.pipeline


@pytest.mark.parametrize('path', GCNET_CONFIGS, ids=osp.basename)
def test_config_builds_and_trains_one_step(path):
    name = osp.basename(path)
    model, cfg = build_detector(path, **_small_rois(path))
    depth = cfg.model.backbone.depth
    blocks = _blocks(model)
    assert _placement(blocks) == _expected_placement(name, depth)
    for block in blocks.values():
        _check_block_args(name, block)
    if 'dconv' in name:
        from mmcv.ops import DeformConv2dPack
        dcn = [m for m in model.backbone.modules()
               if isinstance(m, DeformConv2dPack)]
        assert len(dcn) == sum(STAGE_BLOCKS[depth][1:])

    total = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(total - README_PARAMS[name]) < 0.006  # README: 0.01 M
    extra = sum(p.numel() for b in blocks.values()
                for p in b.parameters()) / 1e6
    if name in PAPER_PARAMS:
        # the configs differ from the baseline only by their blocks
        assert abs(total - extra - PAPER_BASELINE) < 0.05
        paper = PAPER_PARAMS[name] - PAPER_BASELINE
        # within 5 %, or within the 0.1 M that two numbers printed to
        # 0.1 M leave (the +1 GC row's 0.1 M overhead is 0.05-0.15 M)
        assert abs(extra - paper) <= max(0.05 * paper, 0.1), (extra, paper)
    if name in PAPER_BLOCK_OVERHEAD:
        paper = PAPER_BLOCK_OVERHEAD[name]
        assert abs(extra - paper) <= 0.05 * paper, (extra, paper)
    if 'after-add' in name:  # same blocks as after conv3, only moved
        assert abs(extra - (PAPER_BLOCK_OVERHEAD[R50_GC16])) < 0.05 * 2.52

    loss = train_step(model, size=128)
    assert torch.isfinite(loss)
    for n, block in blocks.items():
        grads = [p.grad for p in block.parameters()]
        assert any(g is not None and bool(g.abs().sum() > 0)
                   for g in grads), f'no gradient reaches {n}'


def test_gc_block_without_norm_and_relu_is_a_linear_bottleneck():
    """Table 5(d) "r16" / "r16+ReLU": ``norm=None`` / ``act=None``."""
    import mmctx  # noqa: F401
    from mmctx.models.layers import GlobalContextBlock
    torch.manual_seed(0)
    x = torch.randn(2, 32, 5, 7)
    for act in (None, 'ReLU'):
        block = GlobalContextBlock(32, ratio=4, norm=None, act=act)
        for p in block.parameters():
            torch.nn.init.normal_(p, std=0.3)
        w1, b1 = block.channel_add[0].weight[:, :, 0, 0], block.channel_add[0].bias
        w2, b2 = block.channel_add[-1].weight[:, :, 0, 0], block.channel_add[-1].bias
        xf = x.flatten(2)  # (B, C, HW)
        alpha = torch.einsum('c,bcn->bn', block.conv_mask.weight.flatten(),
                             xf).softmax(-1)
        ctx = torch.einsum('bn,bcn->bc', alpha, xf)
        hidden = ctx @ w1.T + b1
        if act:
            hidden = hidden.clamp(min=0)
        ref = x + (hidden @ w2.T + b2)[:, :, None, None]
        with torch.no_grad():
            torch.testing.assert_close(block(x), ref, rtol=1e-4, atol=1e-4)
        assert len(block.channel_add) == (3 if act else 2)
    with pytest.raises(ValueError, match=r"act must be one of \('ReLU', None\), got 'GELU'"):
        GlobalContextBlock(32, act='GELU')
