"""configs/enl against their rows in configs/enl/metafile.yml (Levi and Ullman,
*Efficient Coarse-to-Fine Non-Local Module for the Detection of Small Objects*).

Rows of one table differ by the context block (none, 5x5 conv, the original
NL, the 1/N-normalised INL or the efficient ENL), the stream it sits on (top-down
at res5, res4, res3 or bottom-up before the last block of res4), the
normalisation of F or of phi / theta (Table 5), the position term (Table 3) and
the image scale (Table 2: 800 px, Tables 3-5: 600 px). Each config's settings
are read from the file, the block's defaults resolved by the block itself, and
compared with its metafile entry, so a config with one wrong setting fails here.
The parameter counts are checked where the configs are built
(tests/test_configs/test_enl_build.py::test_enl_config_one_step).
"""
import os.path as osp
import re

import pytest
from mmengine.config import Config

from mmctx.utils.metafile import REPO, metafile_models
from zoo_helpers import (check_configs_are_the_entries, check_paper_rows, check_readme_rendered,
                         model_zoo_tables_check)

ENL = osp.join(REPO, 'configs', 'enl')
MODELS = metafile_models('enl')
#: the paper's position terms (§3.3) as EfficientNonLocal2d's (pos_enc, pos_fusion)
POSITION = {'none': ('none', None), 'l1 mul': ('l1', 'mul'), 'l1 add': ('l1', 'add'),
            'cos mul': ('dct', 'mul'), 'cos add': ('dct', 'add')}
#: the paper's blocks (§3, Table 5) as EfficientNonLocal2d's (mode, similarity) and F's
#: normalisation: NL is the embedded Gaussian normalised by Z (softmax), INL the dot
#: product normalised by 1/N, ENL the reordered product with phi / theta normalised
BLOCKS = {'NL': ('explicit', 'exp'), 'INL': ('explicit', 'dot'), 'ENL': ('efficient', 'dot')}


def _normalisation(block, text):
    """(phi_norm, theta_norm) the block must resolve to for the entry's normalisation."""
    if block == 'ENL':
        m = re.fullmatch(r'phi (\S+), theta (\S+)', text)
        assert m, f'ENL normalisation {text!r} is not "phi <norm>, theta <norm>"'
        return m.groups()
    if block == 'NL':  # the softmax is the similarity's exp normalised by Z
        assert text == 'softmax', text
        return 'none', 'none'
    assert block == 'INL' and text == '1/N', (block, text)
    return '1/N', 'none'


def test_every_config_has_one_entry_and_every_entry_a_config():
    check_configs_are_the_entries('enl')


def test_every_paper_row_is_reproduced_once():
    # Table 1 compares memory and operations (no experiment); Table 2: baseline, +1NL BU
    # with and without position, +3NL TD; Table 3: no spat and four position terms;
    # Table 4: six rows; Table 5: NL, INL and five ENL normalisations
    rows = check_paper_rows('enl', {'Table 2': 4, 'Table 3': 5, 'Table 4': 6, 'Table 5': 7})
    # every metric of a row as printed: a number, or n.a. (diverged)
    for name, r in rows:
        assert r['Metrics'], (name, r['Row'])
        for value in r['Metrics'].values():
            assert isinstance(value, str) and re.fullmatch(r'\d+\.\d+|n\.a\.', value), \
                (name, r['Row'], value)


def test_readme_tables_are_rendered_from_the_metafile():
    check_readme_rendered('enl')


def test_model_zoo_tables_tool_checks():
    assert model_zoo_tables_check('enl') == 0


def _resize_scales(pipeline):
    return {tuple(t.scale) for t in pipeline if t.type == 'Resize'}


def check_batch(name, entry, cfg):
    """The name's ``{N}xb{B}`` is the config's batch and the GPU count of its entry;
    the lr is Detectron's linear scaling (0.02 for 16 images) of N x B (§4)."""
    m = re.search(r'_(\d+)xb(\d+)-', name)
    assert m, f'{name}: no {{N}}xb{{B}} in the name'
    gpus, per_gpu = map(int, m.groups())
    assert cfg.train_dataloader.batch_size == per_gpu, name
    assert entry['Batch'] == f'{gpus} GPUs x {per_gpu} images', name
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu, name
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.02 * gpus * per_gpu / 16), name


@pytest.mark.parametrize('name', sorted(MODELS))
def test_config_matches_its_row(name):
    from mmctx.models.layers import EfficientNonLocal2d
    entry = MODELS[name]['Metadata']
    cfg = Config.fromfile(osp.join(ENL, name))
    model = cfg.model
    assert entry['Task'] == 'Object Detection' and entry['Dataset'] == 'COCO'
    assert model.type == 'FasterRCNN'
    assert f'R-{model.backbone.depth}' == entry['Backbone']
    assert model.backbone.init_cfg.checkpoint == entry['Pretrained']
    # frozen BN, an affine operation (§4)
    assert model.backbone.norm_cfg.requires_grad is False and model.backbone.norm_eval
    # the §4 recipe
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr) == (entry['Optimizer'], entry['Learning rate'])
    assert (opt.momentum, opt.weight_decay) == (0.9, 1e-4)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == entry['Iterations']
    step, = [s for s in cfg.param_scheduler if s.type == 'MultiStepLR']
    assert step.milestones == entry['LR steps'] and step.gamma == 0.1 and not step.by_epoch
    check_batch(name, entry, cfg)
    scale = tuple(int(v) for v in entry['Scale'].split(' x '))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert _resize_scales(cfg[loader].dataset.pipeline) == {scale}, (name, loader)
    assert name.endswith(f'_coco-{min(scale)}.py'), name  # {dataset}-{shorter side}

    neck, backbone = model.neck, model.backbone
    plugins = backbone.get('plugins') or []
    stream = entry['Stream']
    if stream == 'TD':  # res5, res4, res3, before each upsampling
        assert neck.type == 'ENLFPN' and tuple(neck.block_levels) == (3, 2, 1), name
        assert not plugins, name
        block = dict(neck.block_cfg)
    elif stream == 'BU':  # after layer3[4]'s add, right before the last block of res4
        assert neck.type == 'FPN' and backbone.type == 'ContextResNet', name
        plugin, = plugins
        assert (tuple(plugin.stages), plugin.position, tuple(plugin.blocks)) == (
            (False, False, True, False), 'after_add', (-2, )), name
        block = dict(plugin.cfg)
    else:
        assert stream == 'none' and entry['Block'] == 'none', name
        assert neck.type == 'FPN' and not plugins, name
        return
    assert block.pop('init_std') == 0.01, name  # N(0, 0.01), §4
    if entry['Block'] == '5x5 conv':
        assert block == dict(type='conv5'), name
        assert 'Normalisation' not in entry and 'Position' not in entry
        return
    assert block.pop('type') == 'EfficientNonLocal2d', name
    module = EfficientNonLocal2d(16, **block)  # resolves the block's defaults
    assert module.inter_channels == 8, name  # reduction 2
    assert (module.mode, module.similarity) == BLOCKS[entry['Block']], name
    assert (module.phi_norm, module.theta_norm) == _normalisation(
        entry['Block'], entry['Normalisation']), name
    pos_enc, pos_fusion = POSITION[entry['Position']]
    assert module.pos_enc == pos_enc, name
    if pos_enc != 'none':
        assert module.pos_fusion == pos_fusion, name
    # §3.3: the first 9 x 9 cos-transform columns; e^{-l1/50}
    assert module.dct_size == 9 and module.l1_scale == 50, name
