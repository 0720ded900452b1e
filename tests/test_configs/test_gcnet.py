"""configs/gcnet against their rows in configs/gcnet/metafile.yml (Cao, Xu, Lin, Wei and
Hu, *Global Context Networks*).

The rows of one ablation differ by one setting of the context block (type and
instantiation, bottleneck ratio, pooling, fusion, LN / ReLU, stages, position),
of the detector (backbone, BN, box head, deformable conv, Cascade, schedule,
test set) or of the segmentation head. Each row's label must ask for its
entry's settings (``test_row_labels_ask_for_the_entry_settings``) and each
config must hold its entry's settings (``test_config_matches_its_row``): a
config with one wrong setting fails here. The parameter counts are checked on
the built models by tests/test_configs/test_gcnet_det_build.py and
tests/test_configs/test_gcnet_seg_build.py.
"""
import inspect
import os.path as osp
import re
from functools import lru_cache

import pytest
from mmengine.config import Config

from mmctx.utils.metafile import REPO, metafile_models
from zoo_helpers import (check_configs_are_the_entries, check_paper_rows, check_readme_rendered,
                         model_zoo_tables_check)

GCNET = osp.join(REPO, 'configs', 'gcnet')
MODELS = metafile_models('gcnet')

# rows of the paper's tables; Tables 1-3: their COCO part (the Kinetics and ImageNet
# parts have no config here); Table 5's sub-tables and Table 12(b) repeat the baseline
PAPER_TABLE_ROWS = {
    'Table 1': 5, 'Table 2': 3, 'Table 3': 2, 'Table 4': 4,
    'Table 5(a)': 5, 'Table 5(b)': 3, 'Table 5(c)': 5, 'Table 5(d)': 5, 'Table 5(e)': 5,
    'Table 5(f)': 5, 'Table 6(a)': 9, 'Table 6(b)': 3, 'Table 7(a)': 16, 'Table 7(b)': 7,
    'Table 12(a)': 6, 'Table 12(b)': 5, 'Table 13': 6,
}

# the paper's words -> the configs' values
BLOCK_TYPES = {'GC': 'GlobalContextBlock', 'SNL': 'SimplifiedNonLocal2d', 'NL': 'NonLocal2dBlock'}
NL_MODES = {'Embedded Gaussian': 'embedded_gaussian', 'Gaussian': 'gaussian',
            'Dot product': 'dot_product', 'Concat': 'concatenation'}
STAGES = {'c3': (False, True, False, False), 'c4': (False, False, True, False),
          'c5': (False, False, False, True), 'c3-c5': (False, True, True, True)}
POSITIONS = {'after1x1': 'after_conv3', 'afterAdd': 'after_add'}
FUSIONS = {'add': ('add', ), 'scale': ('mul', )}
TRANSFORMS = {'LN+ReLU': ('LN', 'ReLU'), 'ReLU': (None, 'ReLU'), 'none': (None, None)}
BACKBONES = {'R-50': ('ResNet', 50, None), 'R-101': ('ResNet', 101, None),
             'X-101-32x4d': ('ResNeXt', 101, (32, 4)), 'X-101-64x4d': ('ResNeXt', 101, (64, 4))}
ONE_BLOCK = 'one, before the last residual block'
SCHEDULES = {'1x': (12, [8, 11], 1), '2x': (24, [16, 22], 1), 'ms-3x': (12, [9, 11], 3)}

# the detection default of §5.1: GC r16 after the last 1x1 conv of every c3-c5 bottleneck
GC16 = {'Type': 'GC', 'Ratio': 16, 'Pooling': 'att', 'Fusion': 'add', 'Transform': 'LN+ReLU',
        'Stages': 'c3-c5', 'Position': 'after1x1', 'Blocks': 'all'}
# the segmentation GC block (r = 4), in the head and in the backbone
GC4_HEAD = {'Type': 'GC', 'Ratio': 4, 'Pooling': 'att', 'Fusion': 'add', 'Transform': 'LN+ReLU'}
GC4_BACKBONE = dict(GC4_HEAD, Stages='c3-c5', Position='after1x1', Blocks='all')


def _nl(instantiation='Embedded Gaussian', stage='c4'):
    return {'Type': 'NL', 'Instantiation': instantiation, 'Embedding': 'C/2', 'Stages': stage,
            'Position': 'afterAdd', 'Blocks': ONE_BLOCK}


def _detection_row(table, row):
    """The Metadata a COCO row's label asks for (the §5.1 defaults where it says nothing)."""
    md = {'Dataset': 'COCO', 'Architecture': 'Mask R-CNN', 'Backbone': 'R-50',
          'Backbone Norm': 'syncBN', 'Box Head': '2fc (w/o BN)', 'Deformable Conv': 'none',
          'Schedule': '1x', 'Test Set': 'val2017'}
    method = row.split(': ')[-1]
    if table in ('Table 1', 'Table 3'):
        instantiation = {'E-Gaussian': 'Embedded Gaussian'}.get(method, method)
        block = 'none' if method == 'baseline' else _nl(instantiation)
    elif table == 'Table 2':
        block = _nl(stage=method)
    elif method == 'baseline':
        block = 'none'
    elif table == 'Table 5(a)':
        block = {'+1 NL': _nl(), '+all GC': GC16,
                 '+1 SNL': {'Type': 'SNL', 'Stages': 'c4', 'Position': 'afterAdd',
                            'Blocks': ONE_BLOCK},
                 '+1 GC': dict(GC16, Stages='c4', Position='afterAdd', Blocks=ONE_BLOCK)}[method]
    elif table == 'Table 5(b)':
        block = dict(GC16, Position=method)
    elif table == 'Table 5(c)':
        block = dict(GC16, Stages={'c3+c4+c5': 'c3-c5'}.get(method, method))
    elif table == 'Table 5(d)':
        block = dict(GC16, **({'Ratio': 'w/o ratio', 'Transform': 'one 1x1 conv'}
                              if method == 'w/o ratio' else
                              {'Transform': {'r16': 'none', 'r16+ReLU': 'ReLU',
                                             'r16+LN+ReLU': 'LN+ReLU'}[method]}))
    elif table == 'Table 5(e)':
        block = dict(GC16, Ratio=int(re.fullmatch(r'ratio (\d+)', method).group(1)))
    elif table == 'Table 5(f)':
        pooling, fusion = method.split('+')
        block = dict(GC16, Pooling=pooling, Fusion=fusion)
    else:  # Tables 6 and 7: "+GC r16" / "+GC r4"
        block = dict(GC16, Ratio=int(re.fullmatch(r'\+GC r(\d+)', method).group(1)))
    md['Backbone Block'] = block
    setting = row.split(': ')[0] if ': ' in row else ''
    if table == 'Table 6(a)':
        norm, head = setting.split(', ')
        md['Backbone Norm'] = norm
        md['Box Head'] = {'2fc': '2fc (w/o BN)',
                          '4conv1fc syncBN': '4conv1fc, syncBN in FPN and heads'}[head]
    elif table == 'Table 6(b)':
        md['Schedule'] = setting
    elif table.startswith('Table 7'):
        parts = setting.split('+')
        md['Backbone'] = {'R50': 'R-50', 'R101': 'R-101', 'X101': 'X-101-32x4d',
                          'X101-64x4d': 'X-101-64x4d'}[parts[0]]
        if 'DCN' in parts:
            md['Deformable Conv'] = 'c3-c5'
        if 'Cascade' in parts:
            md['Architecture'] = 'Cascade Mask R-CNN'
        if '4conv1fc' in parts:
            md['Box Head'] = '4conv1fc, syncBN in FPN and heads'
        if 'ms 3x' in parts:
            md['Schedule'] = 'ms-3x'
        if table == 'Table 7(b)':
            md['Test Set'] = 'test-dev2017 (format only)'
    return md


def _segmentation_row(table, row):
    """The Metadata a Cityscapes row's label asks for."""
    md = {'Dataset': 'Cityscapes', 'Decode Head': 'ContextBlockHead (concat c5)',
          'Head Block': 'none', 'Backbone Block': 'none'}
    nl = {'Type': 'NL', 'Instantiation': 'Embedded Gaussian', 'Embedding': 'C/4'}
    if table == 'Table 4':
        instantiation = {'E-Gaussian': 'Embedded Gaussian'}.get(row, row)
        md['Head Block'] = dict(nl, Instantiation=instantiation)
    elif table == 'Table 12(b)' and row != 'baseline':
        pooling, fusion = row.split('+')
        md['Head Block'] = dict(GC4_HEAD, Pooling=pooling, Fusion=fusion)
    elif row in ('DANet', 'ANN', 'CCNet†'):
        del md['Head Block']
        md['Decode Head'] = {'DANet': 'DAHead', 'ANN': 'ANNHead', 'CCNet†': 'CCHead'}[row]
    elif row != 'baseline' and row != 'baseline†':
        md['Head Block'] = {'NL Head': nl, 'NLNet†': nl, 'SNL Head': {'Type': 'SNL'},
                            'GC head': GC4_HEAD, 'GCNet†': GC4_HEAD,
                            'GC backbone (c3-c5)': 'none',
                            'GC backbone + GC Head': GC4_HEAD}[row]
        if row.startswith('GC backbone'):
            md['Backbone Block'] = GC4_BACKBONE
    return md


ROWS = [(name, row) for name, model in MODELS.items() for row in model['Paper Rows']]


def test_every_config_has_one_entry_and_every_entry_a_config():
    for model in check_configs_are_the_entries('gcnet'):
        assert model['In Collection'] == 'GCNet'
        assert model['Config'] == f'configs/gcnet/{model["Name"]}.py'


def test_every_paper_row_is_reproduced_once():
    # each table's rows once, in the paper's order: 1, 2, ... n
    assert check_paper_rows('gcnet', PAPER_TABLE_ROWS) == ROWS
    # every config reproduces a row (the test-dev twins: Table 7(b))
    assert all(model['Paper Rows'] for model in MODELS.values())


def test_repeated_rows_print_the_same_numbers():
    """A model in several tables (the baseline, the default GC r16 model, ...) has the same
    AP / mIoU and #params wherever the paper prints them (but on test-dev, Table 7(b), and
    with Table 13's stronger augmentation)."""
    other = {'box AP': 'Table 7(b)', 'mask AP': 'Table 7(b)', 'mIoU': 'Table 13'}
    # the one exception in the paper: the E-Gaussian block before the last block of c4 is
    # 38.0 / 34.7, input 0.402 in Tables 1 and 5(a) but 38.1 / 34.8, input 0.401 in Table 2
    # (and input 0.401 in Table 3)
    nl_c4 = 'mask-rcnn_r50-syncbn-1nl-c4_fpn_1x_coco.py'
    differ = {(nl_c4, 'box AP'): {38.0, 38.1}, (nl_c4, 'mask AP'): {34.7, 34.8},
              (nl_c4, 'input'): {0.402, 0.401}}
    for name, model in MODELS.items():
        for key in ('box AP', 'mask AP', 'mIoU', '#params (M)', 'input', 'output', 'att'):
            values = {float(r['Metrics'][key]) for r in model['Paper Rows']
                      if key in r['Metrics'] and r['Table'] != other.get(key)
                      and 'garbled' not in str(r['Metrics'][key])}
            assert values == differ.get((name, key), values) and \
                len(values) <= (2 if (name, key) in differ else 1), (name, key, values)


@pytest.mark.parametrize('name,row', ROWS,
                         ids=[f'{r["Table"]}:{r["Row"]}' for _, r in ROWS])
def test_row_labels_ask_for_the_entry_settings(name, row):
    entry = MODELS[name]['Metadata']
    expected = (_segmentation_row if entry['Dataset'] == 'Cityscapes' else _detection_row)(
        row['Table'], row['Row'])
    for key, value in expected.items():
        assert entry.get(key) == value, (f'{name}: {row["Table"]} "{row["Row"]}" asks for '
                                         f'{key} = {value!r}, the metafile has {entry.get(key)!r}')
    if 'Head Block' not in expected:
        assert 'Head Block' not in entry


def test_readme_tables_are_rendered_from_the_metafile():
    # the older tests read the sections by their headings
    check_readme_rendered('gcnet', ('Detection, instance and panoptic segmentation',
                                    'Semantic segmentation'))


def test_model_zoo_tables_tool_checks(capsys):
    """``tools/misc/model_zoo_tables.py --check gcnet`` (run in-process: no second interpreter)."""
    assert model_zoo_tables_check('gcnet') == 0, capsys.readouterr().out


@lru_cache(maxsize=None)
def _config(name):
    return Config.fromfile(osp.join(GCNET, name))


def _checkpoints(cfg, path=''):
    """{key path: checkpoint} of every ``init_cfg`` (and ``pretrained``) under ``cfg``."""
    found = {}
    if isinstance(cfg, dict):
        if cfg.get('pretrained'):
            found[(path + '.pretrained').lstrip('.')] = cfg['pretrained']
        for key, value in cfg.items():
            if key == 'init_cfg':
                for init in value if isinstance(value, (list, tuple)) else [value]:
                    if init and init.get('checkpoint'):
                        found[(path + '.init_cfg').lstrip('.')] = init['checkpoint']
            elif key != 'pretrained':
                found.update(_checkpoints(value, f'{path}.{key}'))
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            found.update(_checkpoints(value, f'{path}.{i}'))
    return found


def _defaults(cls):
    import mmctx.models.layers as layers
    params = inspect.signature(getattr(layers, cls).__init__).parameters
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def _check_block(where, block, cfg):
    """``cfg``: the block's config (``type`` + arguments), ``block``: the metafile's words."""
    assert cfg.type == BLOCK_TYPES[block['Type']], where
    args = dict(_defaults(cfg.type), **{k: v for k, v in cfg.items() if k != 'type'})
    if block['Type'] == 'GC':
        if block['Ratio'] == 'w/o ratio':  # one C x C 1x1 conv (Table 5(d))
            assert args['bottleneck'] is False, where
            assert block['Transform'] == 'one 1x1 conv', where
        else:
            assert args['bottleneck'] is True and args['ratio'] == block['Ratio'], where
            assert (args['norm'], args['act']) == TRANSFORMS[block['Transform']], where
        assert args['pooling'] == block['Pooling'], where
        fusion = args['fusion']
        fusion = (fusion, ) if isinstance(fusion, str) else tuple(fusion)
        assert fusion == FUSIONS[block['Fusion']], where
    elif block['Type'] == 'NL':
        assert args['mode'] == NL_MODES[block['Instantiation']], where
        assert args['reduction'] == int(re.fullmatch(r'C/(\d+)', block['Embedding']).group(1)), \
            where
    else:  # SNL: the block of Eq. 3 has no setting
        assert set(cfg) == {'type'}, where


def _check_backbone_block(name, block, backbone):
    plugins = backbone.get('plugins')
    if block == 'none':
        assert not plugins, f'{name}: a baseline with backbone plugins {plugins}'
        return
    plugin, = plugins
    _check_block(f'{name}: backbone block', block, plugin.cfg)
    assert tuple(plugin.stages) == STAGES[block['Stages']], name
    assert plugin.position == POSITIONS[block['Position']], name
    if block['Blocks'] == 'all':
        assert 'blocks' not in plugin, name
    else:
        assert block['Blocks'] == ONE_BLOCK
        assert tuple(plugin.blocks) == (-2, ), name
    # blocks after the residual addition / on chosen blocks: mmctx's ContextResNet
    if block['Position'] == 'afterAdd' or block['Blocks'] != 'all':
        assert backbone.type == 'ContextResNet', name


def _train_pipeline(cfg):
    ds = cfg.train_dataloader.dataset
    return ds.dataset.pipeline if ds.type == 'RepeatDataset' else ds.pipeline


def _check_detection(name, md, cfg):
    """§5.1 and the row's settings."""
    model = cfg.model
    assert cfg.custom_imports.imports == ['mmctx']
    assert model.type == {'Mask R-CNN': 'MaskRCNN',
                          'Cascade Mask R-CNN': 'CascadeRCNN'}[md['Architecture']]
    backbone = model.backbone
    kind, depth, groups = BACKBONES[md['Backbone']]
    assert backbone.type in (kind, 'ContextResNet') and backbone.depth == depth
    if backbone.type == 'ContextResNet':
        assert kind == 'ResNet'
    if groups:
        assert (backbone.groups, backbone.base_width) == groups
    assert backbone.style == 'pytorch'
    assert backbone.frozen_stages == 1  # c1 and c2 frozen, the rest fine-tuned (§5.1)
    if md['Backbone Norm'] == 'syncBN':  # SyncBN with updated statistics
        assert backbone.norm_cfg.type == 'SyncBN' and not backbone.norm_eval
    else:  # Table 6(a) fixBN: frozen statistics
        assert md['Backbone Norm'] == 'fixBN'
        assert backbone.norm_cfg.type == 'BN' and backbone.norm_eval
    if md['Deformable Conv'] == 'c3-c5':
        assert backbone.dcn.type == 'DCN'
        assert tuple(backbone.stage_with_dcn) == (False, True, True, True)
    else:
        assert md['Deformable Conv'] == 'none' and 'dcn' not in backbone
    _check_backbone_block(name, md['Backbone Block'], backbone)
    heads = model.roi_head.bbox_head
    heads = heads if isinstance(heads, list) else [heads]
    assert len(heads) == (3 if md['Architecture'] == 'Cascade Mask R-CNN' else 1)
    if md['Box Head'] == '4conv1fc, syncBN in FPN and heads':
        assert model.neck.norm_cfg.type == 'SyncBN'
        assert model.roi_head.mask_head.norm_cfg.type == 'SyncBN'
        for h in heads:
            assert h.type == 'Shared4Conv1FCBBoxHead' and h.norm_cfg.type == 'SyncBN'
    else:
        assert md['Box Head'] == '2fc (w/o BN)'
        assert 'norm_cfg' not in model.neck and 'norm_cfg' not in model.roi_head.mask_head
        assert all(h.type == 'Shared2FCBBoxHead' and 'norm_cfg' not in h for h in heads)
    # batch: GPUs x images per GPU; lr scaling refers to the same batch
    assert cfg.train_dataloader.batch_size * md['GPUs'] == md['Batch Size']
    assert cfg.auto_scale_lr.base_batch_size == md['Batch Size']
    # shorter side 800 (training: 640-800 for the multi-scale row)
    resize = [t for t in _train_pipeline(cfg) if 'Resize' in t.type]
    assert len(resize) == 1, name
    if len(md['Train Scale']) == 1:
        assert (resize[0].type, tuple(resize[0].scale)) == ('Resize', tuple(md['Train Scale'][0]))
    else:
        assert resize[0].type == 'RandomResize'
        assert [tuple(s) for s in resize[0].scale] == [tuple(s) for s in md['Train Scale']]
    resize = [t for t in cfg.test_dataloader.dataset.pipeline if 'Resize' in t.type]
    assert [(t.type, tuple(t.scale)) for t in resize] == [('Resize', tuple(md['Test Scale']))]
    # schedules: 1x = 12 epochs (decay at 8, 11), 2x = 24 (16, 22),
    # ms-3x = 3 repeats of the data set x 12 epochs (decay at 9, 11)
    assert SCHEDULES[md['Schedule']] == (md['Epochs'], md['LR Steps'], md['Data Repeats'])
    assert cfg.train_cfg.max_epochs == md['Epochs']
    step, = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
    assert step.milestones == md['LR Steps'] and step.gamma == 0.1
    assert step.end == md['Epochs']
    assert cfg.train_dataloader.dataset.get('times', 1) == md['Data Repeats']
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):  # box and mask AP
        assert evaluator.type == 'CocoMetric'
        assert list(evaluator.metric) == ['bbox', 'segm']
    dataset = cfg.test_dataloader.dataset
    if md['Test Set'] == 'val2017':
        assert not name.endswith('-test-dev.py')
        assert dataset.ann_file == 'annotations/instances_val2017.json'
        assert dataset.data_prefix.img == 'val2017/'
        assert not cfg.test_evaluator.get('format_only', False)
    else:  # Table 7(b): the 7(a) model, training and validation, tested on test-dev
        assert md['Test Set'] == 'test-dev2017 (format only)'
        twin = _config(name.replace('-test-dev.py', '.py'))
        assert MODELS[name.replace('-test-dev.py', '.py')]['Metadata'] == dict(
            md, **{'Test Set': 'val2017'})
        for key in ('model', 'train_dataloader', 'val_dataloader', 'val_evaluator',
                    'optim_wrapper', 'param_scheduler', 'train_cfg'):
            assert cfg[key] == twin[key], key
        assert dataset.ann_file == 'annotations/image_info_test-dev2017.json'
        assert dataset.data_prefix.img == 'test2017/'
        assert dataset.pipeline == twin.test_dataloader.dataset.pipeline
        assert cfg.test_evaluator.format_only
        assert cfg.test_evaluator.ann_file == dataset.data_root + dataset.ann_file


def _check_segmentation(name, md, cfg):
    """§5.4 (the CCNet setting) and the row's head / backbone block."""
    model = cfg.model
    assert cfg.custom_imports.imports == ['mmctx']
    assert model.type == 'EncoderDecoder'
    backbone = model.backbone
    assert md['Backbone'] == 'R-101-D8'  # dilated ResNet-101-V1c, output stride 8
    assert backbone.type == 'ResNetV1c' and backbone.depth == 101
    assert tuple(backbone.strides) == (1, 2, 1, 1) and tuple(backbone.dilations) == (1, 1, 2, 4)
    assert md['Backbone Norm'] == 'syncBN'
    for part in (backbone, model.decode_head, model.auxiliary_head):
        assert part.norm_cfg.type == 'SyncBN'
    _check_backbone_block(name, md['Backbone Block'], backbone)
    head = model.decode_head
    assert head.num_classes == 19
    # 769 = 8 * 96 + 1 crops: corner-aligned resizing in every head, as mmseg's 769 configs
    assert head.align_corners and model.auxiliary_head.align_corners
    if md['Decode Head'] == 'ContextBlockHead (concat c5)':  # Table 13's "†"
        assert head.type == 'ContextBlockHead' and head.concat_input
        assert head.in_channels == 2048 and head.channels == 512
        if md['Head Block'] == 'none':
            assert head.context_cfg is None
        else:
            _check_block(f'{name}: head block', md['Head Block'], head.context_cfg)
    else:
        assert 'Head Block' not in md
        assert head.type == md['Decode Head']
    assert md['Auxiliary Head'] == 'FCN on c4'
    assert model.auxiliary_head.type == 'FCNHead' and model.auxiliary_head.in_index == 2
    assert tuple(model.data_preprocessor.size) == tuple(md['Crop Size'])
    pipeline = cfg.train_dataloader.dataset.pipeline
    crop, = [t for t in pipeline if t.type == 'RandomCrop']
    assert tuple(crop.crop_size) == tuple(md['Crop Size'])
    resize, = [t for t in pipeline if t.type == 'RandomResize']
    assert tuple(resize.ratio_range) == tuple(md['Scale Range'])
    assert cfg.train_dataloader.batch_size * md['GPUs'] == md['Batch Size']
    # lr (1 - iter / iter_max)^0.9 to 0 over the iterations
    assert md['Schedule'] == 'poly, power 0.9, to 0'
    poly, = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end, poly.by_epoch) == (
        'PolyLR', 0.9, 0.0, 0, md['Iterations'], False)
    assert cfg.train_cfg.max_iters == md['Iterations']


@pytest.mark.parametrize('name', sorted(MODELS))
def test_config_matches_its_row(name):
    md = MODELS[name]['Metadata']
    cfg = _config(name)
    assert md['Task'] == ('Semantic Segmentation' if md['Dataset'] == 'Cityscapes'
                          else 'Instance Segmentation')
    # every checkpoint the model is initialised from
    assert _checkpoints(cfg.model) == md['Pretrained']
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == tuple(
        md['Optimizer'][k] for k in ('Type', 'LR', 'Momentum', 'Weight Decay'))
    if md['Dataset'] == 'COCO':
        _check_detection(name, md, cfg)
    else:
        assert md['Dataset'] == 'Cityscapes'
        _check_segmentation(name, md, cfg)
