"""configs/ocnet against their rows in configs/ocnet/metafile.yml (Yuan et al.,
*OCNet: Object Context for Semantic Segmentation*).

Rows of one table differ by the head (dilated-FCN baseline, PPM, ASPP, Base-OC,
Pyramid-OC, ASP-OC, RCCA, CGNL, Efficient Attention), the object context (SA,
SA-2x, ISA), the ISA groups (P_h, P_w) and order, the backbone, the data set's
training setting (§4.2), OHEM and test-time augmentation (Tables 7-11), and, for
Table 12, the context block and the schedule. Each config's settings are read
from the file and compared with its metafile entry; the object context is built
(at a few channels) so a class default that moved would fail too. The parameter
counts of the entries are checked against the built models in
tests/test_configs/test_ocnet_build.py and tests/test_configs/test_placement_build.py.
"""
import os.path as osp
from collections import Counter

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmctx.utils.metafile import REPO, metafile_models
from zoo_helpers import (check_configs_are_the_entries, check_paper_rows, check_readme_rendered,
                         model_zoo_tables_check)

OCNET = osp.join(REPO, 'configs', 'ocnet')
MODELS = metafile_models('ocnet')

#: rows of each of the paper's tables (and the two single-relation results of §4.3's text)
PAPER_TABLE_ROWS = {
    'Table 1': 9,  # baseline, six (P_h, P_w) of global+local, 8 x 8 global+local, local+global
    'Table 1, §4.3 text': 2,  # "only global relation: 78.9%", "only local relation: 77.2%"
    'Table 2': 10,  # Cityscapes and ADE20K: baseline, + PPM, + ASPP, + Base-OC (SA), (ISA)
    'Table 3': 5,  # SA-2x, RCCA, CGNL, Efficient Attention, Base-OC (ISA)
    'Table 5': 7,  # baseline, Base-OC, Pyramid-OC, ASP-OC, each with SA and ISA
    'Table 6': 8,  # 12 / 9 / 5 / 3 px, baseline and + Base-OC (ISA)
    'Table 7': 4, 'Table 8': 4, 'Table 9': 4, 'Table 10': 4, 'Table 11': 4,  # OCNet rows
    'Table 12': 6,  # Mask-RCNN, + NL, + ISA; 1x and 2x
}

#: §4.2 per data set: lr, weight decay, crop, total batch, iterations (train / train+val)
SETTINGS = {
    ('Cityscapes', 'train'): (0.01, 5e-4, '512x1024', 8, 60000),
    ('Cityscapes', 'train+val'): (0.01, 5e-4, '512x1024', 8, 100000),
    ('ADE20K', 'train'): (0.02, 1e-4, '520x520', 16, 150000),
    ('LIP', 'train'): (0.007, 5e-4, '473x473', 32, 100000),
    ('PASCAL-Context', 'train'): (0.001, 1e-4, '520x520', 16, 30000),
    ('COCO-Stuff-10k', 'train'): (0.001, 1e-4, '520x520', 16, 60000),
}
#: data set -> (mmseg / mmdet dataset class, classes)
DATASETS = {'Cityscapes': ('CityscapesDataset', 19), 'ADE20K': ('ADE20KDataset', 150),
            'LIP': ('BaseSegDataset', 20), 'PASCAL-Context': ('PascalContextDataset59', 59),
            'COCO-Stuff-10k': ('COCOStuffDataset', 171), 'COCO': ('CocoDataset', 80)}
#: (data set, split) -> where the split's images are listed in the data set's layout
SPLITS = {('Cityscapes', 'train'): 'leftImg8bit/train', ('Cityscapes', 'val'): 'leftImg8bit/val',
          ('Cityscapes', 'test'): 'leftImg8bit/test',
          ('ADE20K', 'train'): 'images/training', ('ADE20K', 'val'): 'images/validation',
          ('LIP', 'train'): 'train_images', ('LIP', 'val'): 'val_images',
          # the paper's PASCAL-Context "test" (5,105 images) is the VOC2010 val list
          ('PASCAL-Context', 'train'): 'SegmentationContext/train.txt',
          ('PASCAL-Context', 'test'): 'SegmentationContext/val.txt',
          ('COCO-Stuff-10k', 'train'): 'train2014', ('COCO-Stuff-10k', 'test'): 'test2014'}
HEADS = {'FCN': 'FCNHead', 'PPM': 'PSPHead', 'ASPP': 'ASPPHead', 'Base-OC': 'BaseOCHead',
         'Pyramid-OC': 'PyramidOCHead', 'ASP-OC': 'ASPOCHead', 'RCCA': 'CCHead',
         'CGNL': 'CGNLHead', 'Efficient Attention': 'EfficientAttentionHead'}
OC_HEADS = ('Base-OC', 'Pyramid-OC', 'ASP-OC')
ORDERS = {'global-local': 'global_local', 'local-global': 'local_global', 'global': 'global',
          'local': 'local'}


def _entries(task=None):
    return sorted(n for n, m in MODELS.items() if task in (None, m['Metadata']['Task']))


def test_every_config_has_one_entry_and_every_entry_a_config():
    check_configs_are_the_entries('ocnet')
    tasks = Counter(m['Metadata']['Task'] for m in MODELS.values())
    assert tasks == {'Semantic Segmentation': 47, 'Instance Segmentation': 6}


def test_every_paper_row_is_reproduced_once():
    # once each, in their places 1..n of the paper's tables
    check_paper_rows('ocnet', PAPER_TABLE_ROWS)
    for name, model in MODELS.items():  # every config reproduces a row or says why it exists
        assert model['Paper Rows'] or model['Metadata'].get('Note'), name
        for row in model['Paper Rows']:
            assert row['Metrics'], (name, row['Row'])


def test_readme_tables_are_rendered_from_the_metafile():
    check_readme_rendered('ocnet', ('Detection and instance segmentation (Table 12)',
                                    'Semantic segmentation', 'Efficiency (Table 4)'))


def test_model_zoo_tables_tool_checks():
    assert model_zoo_tables_check('ocnet') == 0


@pytest.mark.parametrize('name', _entries('Semantic Segmentation'))
def test_entry_has_the_training_setting_of_its_data_set(name):
    """§4.2's per-data-set setting, written from the paper, against the entry
    (the entry is then checked against the config)."""
    md = MODELS[name]['Metadata']
    lr, wd, crop, batch, iters = SETTINGS[(md['Dataset'], md['Training data'])]
    assert (md['lr'], md['Weight decay'], md['Crop size'], md['Batch size'],
            md['Iterations']) == (lr, wd, crop, batch, iters)
    assert (md['Optimizer'], md['Momentum'], md['LR schedule']) == ('SGD', 0.9, 'poly, power 0.9')
    assert md['Auxiliary head']['Loss weight'] == 0.4
    tables = {r['Table'] for r in MODELS[name]['Paper Rows']}
    sota = tables & {f'Table {i}' for i in range(7, 12)}
    # Tables 7-11 test with multi-scale (+ flip), Table 7 trains on train+val with OHEM
    assert (md['Test-time aug'] != 'none') == bool(sota)
    assert (md['OHEM'] != 'none') == (md['Training data'] == 'train+val') == ('Table 7' in tables)
    # every OCNet head is the authors' released variant (the tables report their code)
    assert (md.get('Variant') == 'official') == (md['Head'] in OC_HEADS)


@pytest.mark.parametrize('name', _entries('Instance Segmentation'))
def test_entry_has_the_mask_rcnn_setting_of_the_paper(name):
    """§4.5: batch 16, SGD lr 0.02, weight decay 1e-4; the 1x schedule (90k iterations,
    steps at 60k / 80k) is mmdet's 12 epochs with steps after 8 and 11, the 2x 24
    epochs with steps after 16 and 22; one block (NL or ISA) before res4's last block."""
    md = MODELS[name]['Metadata']
    epochs, steps = {'1x': (12, [8, 11]), '2x': (24, [16, 22])}[md['Schedule']]
    assert (md['Epochs'], md['LR steps (epochs)']) == (epochs, steps)
    assert (md['Optimizer'], md['lr'], md['Weight decay'], md['Batch size']) == (
        'SGD', 0.02, 1e-4, 16)
    assert (md['Dataset'], md['Backbone'], md['Neck']) == ('COCO', 'R-50', 'FPN')
    row, = MODELS[name]['Paper Rows']
    label = {'none': 'Mask-RCNN', 'NL': '+ NL', 'ISA': '+ ISA'}[md['Context module']]
    assert row['Row'] == f'{label}, {md["Schedule"]}'
    if md['Context module'] == 'ISA':  # the default ISA of the paper (P_h = P_w = 8)
        assert (md['ISA groups (P_h x P_w)'], md['ISA order']) == ('8 x 8', 'global-local')


def _value(v):
    """Config values as YAML reads them: tuples as lists."""
    if isinstance(v, (tuple, list)):
        return [_value(x) for x in v]
    return v


def _checkpoints(cfg):
    """Every checkpoint the model config loads: ``pretrained`` and ``init_cfg.checkpoint``."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get('pretrained'):
                found.append(node['pretrained'])
            init = node.get('init_cfg')
            for init in init if isinstance(init, list) else [init]:
                if isinstance(init, dict) and init.get('checkpoint'):
                    found.append(init['checkpoint'])
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(cfg.model.to_dict())
    return sorted(set(found))


def _built_head(head_cfg):
    """The decode head of the config at 16 -> 8 channels (single input), for its OCP."""
    from mmseg.registry import MODELS as SEG_MODELS
    cfg = dict(head_cfg, in_channels=16, channels=8, in_index=0, input_transform=None,
               norm_cfg=dict(type='BN'))
    cfg.pop('sampler', None)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return SEG_MODELS.build(cfg)


def _check_isa(att, md):
    assert type(att).__name__ == 'InterlacedSparseSelfAttention'
    ph, pw = att.groups
    assert f'{ph} x {pw}' == md['ISA groups (P_h x P_w)']
    assert att.order == ORDERS[md['ISA order']]
    # one relation only builds only its own self-attention
    built = [s for s in ('global', 'local') if att.relation(s) is not None]
    assert built == sorted(att.order.split('_'), key=('global', 'local').index)


def _check_segmentation(cfg, name, md):
    import mmctx  # noqa: F401
    model = cfg.model
    assert cfg.default_scope == 'mmseg'
    # data: data set class and classes, training splits, evaluated split
    dataset_type, classes = DATASETS[md['Dataset']]
    train = cfg.train_dataloader.dataset
    parts = train.datasets if train.type == 'ConcatDataset' else [train]
    assert {d.type for d in parts} == {dataset_type}
    assert model.decode_head.num_classes == model.auxiliary_head.num_classes == classes

    def where(d):
        return (d.get('ann_file') or '') + ' ' + d.data_prefix.img_path

    assert [SPLITS[(md['Dataset'], s)] in where(d)
            for d, s in zip(parts, md['Training data'].split('+'))] == [True] * len(parts)
    assert len(parts) == len(md['Training data'].split('+'))
    assert SPLITS[(md['Dataset'], md['Test set'])] in where(cfg.test_dataloader.dataset)
    # backbone, checkpoint, output stride
    bb = model.backbone
    if md['Backbone'] == 'HRNetV2-W48':
        assert bb.type == 'HRNet'
        assert tuple(bb.extra.stage4.num_channels) == (48, 96, 192, 384)
        assert model.decode_head.input_transform == 'resize_concat'
        assert tuple(model.decode_head.in_index) == (0, 1, 2, 3)
        stride = 4  # the highest-resolution branch
    else:
        assert bb.type == 'ResNetV1c' and md['Backbone'] == f'R-{bb.depth}-D8'
        assert tuple(bb.dilations) == (1, 1, 2, 4)
        stride = 4
        for s in bb.strides:
            stride *= s
    assert stride == md['Output stride']
    assert _checkpoints(cfg) == [md['Pretrained']]
    # auxiliary FCN loss on res4 (ResNet) or on the final concatenation (HRNet)
    aux = model.auxiliary_head
    assert aux.type == 'FCNHead' and aux.loss_decode.loss_weight == md['Auxiliary head'][
        'Loss weight']
    if md['Auxiliary head']['Input'] == 'res4':
        assert aux.in_index == 2 and not aux.get('input_transform')
    else:
        assert md['Auxiliary head']['Input'] == 'final representation'
        assert tuple(aux.in_index) == (0, 1, 2, 3) and aux.input_transform == 'resize_concat'
    # head, its settings, object context
    head = model.decode_head
    assert head.type == HEADS[md['Head']]
    for key, value in md['Head settings'].items():
        assert _value(head.get(key)) == value, (key, head.get(key))
    if md['Head'] in OC_HEADS:
        built = _built_head(head)
        assert built.variant == head.variant == md['Variant']
        ocps = list(built.ocps) if md['Head'] == 'Pyramid-OC' else [built.ocp]
        for ocp in ocps:
            if md['Object context'] == 'ISA':
                _check_isa(ocp.attention, md)
                assert ocp.attention.variant == md['Variant']
            else:
                assert md['Object context'] in ('SA', 'SA-2x')
                assert type(ocp.attention).__name__ == 'SelfAttention2d'
                assert 'ISA groups (P_h x P_w)' not in md and 'ISA order' not in md
        if md['Head'] == 'Base-OC':
            assert built.downsample == (2 if md['Object context'] == 'SA-2x' else 1)
    else:
        assert md['Object context'] == 'none' and 'Variant' not in md
        assert 'attention' not in head and 'ocp_cfg' not in head
    # OHEM
    if md['OHEM'] == 'none':
        assert 'sampler' not in head
    else:
        assert head.sampler.type == 'OHEMPixelSampler'
        assert (head.sampler.thresh, head.sampler.min_kept) == (md['OHEM']['thresh'],
                                                                md['OHEM']['min_kept'])
    # crop, batch, schedule, optimizer
    crop = tuple(int(s) for s in md['Crop size'].split('x'))
    assert tuple(model.data_preprocessor.size) == crop
    crops = [t for d in parts for t in d.pipeline if t.type == 'RandomCrop']
    assert crops and all(tuple(t.crop_size) == crop for t in crops)
    per_gpu = md['Batch size'] // md['GPUs']
    assert cfg.train_dataloader.batch_size == per_gpu
    assert f'_{md["GPUs"]}xb{per_gpu}-' in name
    assert cfg.train_cfg.max_iters == md['Iterations']
    poly, = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min, poly.end) == ('PolyLR', 0.9, 0.0,
                                                                md['Iterations'])
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.momentum) == (
        md['Optimizer'], md['lr'], md['Weight decay'], md['Momentum'])
    assert cfg.norm_cfg.type == 'SyncBN'
    # test-time augmentation of the rows that use it (tools/test.py --tta)
    if md['Test-time aug'] != 'none':
        tta, = [t for t in cfg.tta_pipeline if t.type == 'TestTimeAug']
        resize, *rest = tta.transforms
        assert [t.scale_factor for t in resize] == md['Test-time aug']['Scales']
        flips = [sorted(t.prob for t in step) for step in rest if step[0].type == 'RandomFlip']
        assert flips == ([[0.0, 1.0]] if md['Test-time aug']['Flip'] else [])
    # Cityscapes val: the boundary F-score of Table 6 and the tables' pixel accuracy
    if (md['Dataset'], md['Test set']) == ('Cityscapes', 'val'):
        assert cfg.val_evaluator.type == 'FWIoUMetric'
        assert tuple(cfg.val_evaluator.bf_tolerances) == (3, 5, 9, 12)
    if (md['Dataset'], md['Test set']) == ('Cityscapes', 'test'):  # the server's PNGs
        assert cfg.test_evaluator.type == 'CityscapesMetric' and cfg.test_evaluator.format_only


def _check_detection(cfg, name, md):
    import mmctx  # noqa: F401
    from mmctx.models.layers.object_context import ResidualObjectContext
    model = cfg.model
    assert cfg.default_scope == 'mmdet'
    assert (model.type, model.neck.type) == ('MaskRCNN', md['Neck'])
    assert cfg.train_dataloader.dataset.type == DATASETS[md['Dataset']][0]
    assert model.roi_head.bbox_head.num_classes == model.roi_head.mask_head.num_classes == \
        DATASETS[md['Dataset']][1]
    assert f'R-{model.backbone.depth}' == md['Backbone']
    assert _checkpoints(cfg) == [md['Pretrained']]
    plugins = model.backbone.get('plugins') or []
    if md['Context module'] == 'none':
        assert not plugins and 'Context position' not in md
    else:
        plugin, = plugins
        assert model.backbone.type == 'ContextResNet'
        # before the last block of res4: the output of layer3[-2] after its add
        assert md['Context position'] == 'res4, before its last block, after the add'
        assert (tuple(plugin.stages), plugin.position, tuple(plugin.blocks)) == (
            (False, False, True, False), 'after_add', (-2, ))
        block = plugin.cfg
        if md['Context module'] == 'NL':
            assert block.type == 'NonLocal2dBlock'
            assert {k: v for k, v in block.items() if k != 'type'} == md['NL settings']
        else:
            assert md['Context module'] == 'ISA' and block.type == 'ResidualObjectContext'
            with DefaultScope.overwrite_default_scope('mmdet'):
                built = ResidualObjectContext(16, **{k: v for k, v in block.items()
                                                     if k != 'type'})
            _check_isa(built.attention, md)
            assert built.attention.variant == md['Variant']
    # schedule: 1x / 2x epochs and steps, SGD, batch 16 over 8 GPUs
    assert cfg.train_cfg.max_epochs == md['Epochs']
    assert md['Schedule'] == {12: '1x', 24: '2x'}[md['Epochs']] and f'_{md["Schedule"]}_' in name
    step = cfg.param_scheduler[-1]
    assert step.type == 'MultiStepLR' and list(step.milestones) == md['LR steps (epochs)']
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.momentum) == (
        md['Optimizer'], md['lr'], md['Weight decay'], md['Momentum'])
    assert cfg.train_dataloader.batch_size * md['GPUs'] == md['Batch size']


@pytest.mark.parametrize('name', sorted(MODELS))
def test_config_matches_its_row(name):
    md = MODELS[name]['Metadata']
    cfg = Config.fromfile(osp.join(OCNET, name))
    if md['Task'] == 'Semantic Segmentation':
        _check_segmentation(cfg, name, md)
    else:
        assert md['Task'] == 'Instance Segmentation'
        _check_detection(cfg, name, md)
