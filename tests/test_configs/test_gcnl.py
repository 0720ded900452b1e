"""configs/gcnl against their rows in configs/gcnl/metafile.yml (Woo, Kim, Lee and
Kweon, *Global Context and Geometric Priors for Effective Non-Local Self-Attention*).

Rows of Tables 2 and 3 differ by the detector, the backbone and the neck (FPN,
BFPN = mmdet's BFP with the non-local refine, EBFPN = the GCNL block as refine,
with its heads, reduction, key sub-sampling and pool order); rows of Table 1 by
the decode head on the dilated R-50 and by the data set (crop, batch,
iterations, lr). Each config's settings are read from the file and compared
with its metafile entry, so a config with one wrong setting fails here. The
parameter counts are checked where the configs are built
(tests/test_configs/test_gcnl_det_build.py, tests/test_configs/test_gcnl_seg_build.py).
"""
import os.path as osp
import re

import pytest
from mmengine.config import Config

from mmctx.utils.metafile import REPO, metafile_models
from zoo_helpers import (check_configs_are_the_entries, check_paper_rows, check_readme_rendered,
                         model_zoo_tables_check)

GCNL = osp.join(REPO, 'configs', 'gcnl')
MODELS = metafile_models('gcnl')
#: the paper's detectors as mmdet's model types
DETECTORS = {'RetinaNet': 'RetinaNet', 'FCOS': 'FCOS', 'Faster R-CNN': 'FasterRCNN',
             'Mask R-CNN': 'MaskRCNN', 'Cascade Mask R-CNN': 'CascadeRCNN',
             'Panoptic FPN': 'PanopticFPN'}
#: classes of each semantic segmentation data set (Table 1)
NUM_CLASSES = {'PASCAL-Context': 60, 'ADE20K': 150, 'Cityscapes': 19}


def test_every_config_has_one_entry_and_every_entry_a_config():
    check_configs_are_the_entries('gcnl')


def test_every_paper_row_is_reproduced_once():
    # Table 1: 9 methods x 3 data sets; Table 2: 5 detectors x (FPN, BFPN, EBFPN);
    # Table 3: Panoptic FPN x (FPN, BFPN, EBFPN)
    rows = check_paper_rows('gcnl', {'Table 1': 27, 'Table 2': 15, 'Table 3': 6})
    for name, r in rows:
        for key, value in r['Metrics'].items():
            # as printed: quoted numbers, Params in M (Table 3: "MB"), FLOPs in G
            unit = {'Params': 'MB?', 'FLOPs': 'G'}.get(key, '')
            assert isinstance(value, str) and re.fullmatch(r'\d+\.\d+' + unit, value), \
                (name, r['Row'], key, value)


def test_every_table2_config_has_a_test_dev_twin():
    table2 = sorted(name for name, m in MODELS.items()
                    if any(r['Table'] == 'Table 2' for r in m['Paper Rows']))
    twins = sorted(name for name in MODELS if name.endswith('-test-dev.py'))
    assert len(table2) == 15
    assert twins == sorted(n.replace('.py', '-test-dev.py') for n in table2)
    for twin in twins:
        entry, trained = MODELS[twin], MODELS[twin.replace('-test-dev.py', '.py')]
        assert entry['Paper Rows'] == [] and 'test-dev' in entry['Metadata']['Note']
        assert entry['Metadata']['Test set'] == 'test-dev2017'
        # the same model: every other setting (the parameter count included) is the twin's
        same = {k: v for k, v in entry['Metadata'].items() if k not in ('Test set', 'Note')}
        assert same == {k: v for k, v in trained['Metadata'].items() if k != 'Test set'}


def test_readme_tables_are_rendered_from_the_metafile():
    check_readme_rendered('gcnl')


def test_model_zoo_tables_tool_checks():
    assert model_zoo_tables_check('gcnl') == 0


def _paper_params(entry):
    """The paper's Params of the entry's row, in M ("37.74M", Table 3's "45.82MB")."""
    row, = entry['Paper Rows']
    return float(re.fullmatch(r'([0-9.]+)MB?', row['Metrics']['Params']).group(1))


@pytest.mark.parametrize('family', ['retinanet_r50_fpn', 'fcos_r50-caffe_fpn_gn-head',
                                    'faster-rcnn_r50_fpn', 'mask-rcnn_r50_fpn',
                                    'cascade-mask-rcnn_r50_fpn', 'panoptic-fpn_r50_fpn',
                                    'panoptic-fpn_r101_fpn'])
def test_neck_overheads_match_the_paper(family):
    """Our trainable params (the metafile's, checked against the built models where
    they are built) against the paper's: baselines within 1 %, the BFPN and EBFPN
    overheads within 5 % (our counts are rounded to 0.01 M, as the paper's)."""
    ours, paper = [], []
    for neck in ('', '-bfpn', '-ebfpn'):
        entry = MODELS[f'{family}{neck}_1x_coco.py']
        ours.append(entry['Metadata']['Parameters (M)'])
        paper.append(_paper_params(entry))
    assert abs(ours[0] - paper[0]) / paper[0] < 0.01
    for i in (1, 2):
        overhead, expected = ours[i] - ours[0], paper[i] - paper[0]
        assert abs(overhead - expected) / expected < 0.05, (family, overhead, expected)


def _check_schedule(name, entry, cfg):
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr) == (entry['Optimizer'], entry['Learning rate']), name
    m = re.fullmatch(r'(\d+) GPUs x (\d+) images', entry['Batch'])
    assert m, f'{name}: Batch {entry["Batch"]!r} is not "<N> GPUs x <B> images"'
    gpus, per_gpu = map(int, m.groups())
    assert cfg.train_dataloader.batch_size == per_gpu, name
    if 'Epochs' in entry:  # mmdet's 1x: 12 epochs, x0.1 at 8 and 11, 16 images
        assert cfg.train_cfg.max_epochs == entry['Epochs'], name
        step, = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
        assert step.milestones == [8, 11], name
        assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu, name
    else:  # mmseg: {N}xb{B}-{iterations} in the name
        assert cfg.train_cfg.max_iters == entry['Iterations'], name
        assert f'_{gpus}xb{per_gpu}-{entry["Iterations"] // 1000}k_' in name, name


def _check_detector(name, entry, cfg):
    model = cfg.model
    assert model.type == DETECTORS[entry['Detector']], name
    if entry['Detector'] == 'Cascade Mask R-CNN':
        assert model.roi_head.get('mask_head'), name
    backbone = model.backbone
    depth, caffe = re.fullmatch(r'R-(\d+)( \(caffe\))?', entry['Backbone']).groups()
    assert backbone.depth == int(depth) and (backbone.style == 'caffe') == bool(caffe), name
    assert backbone.init_cfg.checkpoint == entry['Pretrained'], name
    test = cfg.test_dataloader.dataset
    assert ('test-dev' in test.ann_file) == (entry['Test set'] == 'test-dev2017'), name
    assert 'val2017' in cfg.val_dataloader.dataset.ann_file, name  # validation stays on val
    neck = model.neck
    if entry['Neck'] == 'FPN':
        assert neck.type == 'FPN', name
        assert not {'Refine', 'Refine level', 'GCNL heads'} & set(entry), name
        return
    fpn, refine = neck
    assert fpn.type == 'FPN', name
    # the gathered level: P(2 + the FPN's first input level + refine_level)
    assert f'P{2 + fpn.get("start_level", 0) + refine.refine_level}' == entry['Refine level'], name
    assert refine.num_levels == fpn.num_outs and refine.in_channels == fpn.out_channels, name
    if entry['Neck'] == 'BFPN':
        assert (refine.type, refine.refine_type) == ('BFP', 'non_local'), name
        assert entry['Refine'] == 'non-local' and 'GCNL heads' not in entry, name
        return
    assert entry['Neck'] == 'EBFPN' and entry['Refine'] == 'GCNL', name
    assert refine.type == 'EBFPN', name
    from mmctx.models.layers import GCNLBlock
    block_cfg = dict(refine.refine_cfg)
    assert block_cfg.pop('type') == 'GCNLBlock', name
    block = GCNLBlock(refine.in_channels, **block_cfg)  # resolves the block's defaults
    assert block.num_heads == entry['GCNL heads'], name
    assert block.channels == refine.in_channels // entry['GCNL reduction'], name
    assert block.attn_drop == entry['Attention dropout'], name
    assert block.use_context and block.use_rel_pos, name  # the paper's two additions
    assert block.sub_sample and block.pool.kernel_size == entry['Key sub-sampling'], name
    order = re.fullmatch(r'(before|after) projection', entry['Pool order']).group(1)
    assert block.pool_order == order, name


def _check_segmentor(name, entry, cfg):
    model = cfg.model
    assert model.type == 'EncoderDecoder', name
    backbone = model.backbone
    assert entry['Backbone'] == 'R-50-D8' and backbone.depth == 50, name
    # output stride 8: res4 / res5 dilated instead of strided
    assert tuple(backbone.strides) == (1, 2, 1, 1) and tuple(backbone.dilations) == (1, 1, 2, 4)
    assert list(backbone.multi_grid) == entry['Multi-grid'], name
    assert model.pretrained == entry['Pretrained'], name
    assert backbone.norm_cfg.type == entry['Norm'] == 'SyncBN', name
    head = model.decode_head
    assert head.type == entry['Decode head'], name
    for key, value in entry['Head settings'].items():
        got = head[key]
        got = list(got) if isinstance(got, (tuple, list)) else got
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, \
            (name, key, got, value)
    assert head.norm_cfg.type == 'SyncBN', name
    assert head.num_classes == NUM_CLASSES[entry['Dataset']], name
    assert entry['Auxiliary head'] == 'none' and model.get('auxiliary_head') is None, name
    crop = tuple(int(v) for v in entry['Crop'].split(' x '))
    assert tuple(cfg.crop_size) == crop and tuple(model.data_preprocessor.size) == crop, name
    crops = [t.crop_size for t in cfg.train_dataloader.dataset.pipeline
             if t.type == 'RandomCrop']
    assert [tuple(c) for c in crops] == [crop], name
    assert name.endswith(f'-{crop[0]}x{crop[1]}.py'), name


@pytest.mark.parametrize('name', sorted(MODELS))
def test_config_matches_its_row(name):
    entry = MODELS[name]['Metadata']
    cfg = Config.fromfile(osp.join(GCNL, name))
    assert cfg.custom_imports.imports == ['mmctx'], name
    _check_schedule(name, entry, cfg)
    if entry['Task'] == 'Semantic Segmentation':
        assert cfg.default_scope == 'mmseg', name
        _check_segmentor(name, entry, cfg)
    else:
        assert entry['Task'] in ('Object Detection', 'Instance Segmentation',
                                 'Panoptic Segmentation'), name
        assert entry['Dataset'] == 'COCO' and cfg.get('default_scope', 'mmdet') == 'mmdet'
        _check_detector(name, entry, cfg)
