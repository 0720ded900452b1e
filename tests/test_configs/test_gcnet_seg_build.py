"""Cao et al. (GCNet) §5.4, Tables 4, 12-13 (configs/gcnet, Cityscapes 769x769, R-101-D8).

Every config builds and runs one forward + backward on two 64x64 crops on the CPU (pretrained
weights off here only, SyncBN as BN); the parameter overhead of every Table 12 row over the
baseline matches the paper's #params within 5 %; the metafile's "Parameters (M)" (the README's
"Params (M, ours)" column) is the count of the built model. The configs, their rows and the
paper's #params are configs/gcnet/metafile.yml's; the §5.4 training setting and each row's head
are checked on the configs by tests/test_configs/test_gcnet.py.
"""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from mmctx.utils.metafile import metafile_models
from layer_helpers import assert_every_gradient, missing_gradients, randomise_zeros
from seg_helpers import CONFIGS, build_segmentor, train_step

pytestmark = pytest.mark.usefixtures('mmseg_scope')

GCNET = osp.join(CONFIGS, 'gcnet')
MODELS = {n: m for n, m in metafile_models('gcnet').items()
          if m['Metadata']['Dataset'] == 'Cityscapes'}
PATHS = [osp.join(GCNET, n) for n in sorted(MODELS)]
SUFFIX = '_4xb2-60k_cityscapes-769x769.py'
BASELINE = 'fcn-concat_r101-d8' + SUFFIX
GCB = '-gcb-r4-c3-c5'
NL_MODES = {'Embedded Gaussian': 'embedded_gaussian', 'Gaussian': 'gaussian',
            'Dot product': 'dot_product', 'Concat': 'concatenation'}


def _paper_params():
    """{config: the #params (M) Tables 12-13 print for it}: one number per config."""
    out = {}
    for name, model in MODELS.items():
        for row in model['Paper Rows']:
            if '#params (M)' in row['Metrics']:
                assert out.setdefault(name, row['Metrics']['#params (M)']) == \
                    row['Metrics']['#params (M)'], name
    return out


# Cao et al. (GCNet) Tables 12-13: config -> paper #params (M)
PAPER_PARAMS = _paper_params()
# Table 4: the NL head with each pairwise function (no #params printed)
TABLE4 = {n: NL_MODES[m['Metadata']['Head Block']['Instantiation']] for n, m in MODELS.items()
          if any(r['Table'] == 'Table 4' for r in m['Paper Rows'])}
# Table 13's mmseg heads (DANet, ANN, CCNet)
TABLE13 = sorted(n for n, m in MODELS.items()
                 if m['Metadata']['Decode Head'] != 'ContextBlockHead (concat c5)')
TABLE12 = [n for n in PAPER_PARAMS if n != BASELINE and n not in TABLE13]
OUR_PARAMS = {n: m['Metadata']['Parameters (M)'] for n, m in MODELS.items()}


def test_every_table_row_has_a_config():
    """Tables 12(a)-(b): 9 models with a #params (baseline, NL / SNL head, four GC heads, GC
    backbone with and without GC head), Table 13: 3 more; Table 4: the 4 NL heads, one of
    them Table 12's."""
    assert len(PAPER_PARAMS) == 12 and len(TABLE12) == 8 and len(TABLE13) == 3
    assert sorted(TABLE4.values()) == sorted(NL_MODES.values())
    assert sorted(MODELS) == sorted(set(PAPER_PARAMS) | set(TABLE4))
    assert all(re.fullmatch(r'[a-z0-9-]+_r101-d8(-gcb-r4-c3-c5)?' + re.escape(SUFFIX), n)
               for n in MODELS)


_PARAMS = {}


def params(name):
    """All parameters of the built segmentor (auxiliary head included), cached (also by
    test_config_one_step)."""
    if name not in _PARAMS:
        model, _ = build_segmentor(osp.join(GCNET, name))
        _PARAMS[name] = sum(p.numel() for p in model.parameters())
    return _PARAMS[name]


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
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    loss = train_step(model, size=64, batch=2)
    assert torch.isfinite(loss)
    assert_every_gradient(model)
    n = sum(p.numel() for p in model.parameters())
    assert n / 1e6 == pytest.approx(OUR_PARAMS[osp.basename(path)], abs=0.006)
    _PARAMS[osp.basename(path)] = n  # the overhead test below needs no second build


def test_gradient_check_catches_a_detached_block():
    """The walk's check fails on a block cut out of the graph: with the GC head's block
    output detached (what a forward that drops the block's branch would do), its parameters
    get no gradient and the check names every one of them."""
    model, _ = build_segmentor(osp.join(GCNET, 'gc-head-att-add_r101-d8' + SUFFIX), crop=32)
    randomise_zeros(model)
    block = model.decode_head.context_block
    block.register_forward_hook(lambda module, args, out: out.detach())
    assert torch.isfinite(train_step(model, size=32, batch=2))
    names = ['decode_head.context_block.' + n for n, _ in block.named_parameters()]
    assert names and set(names) <= set(missing_gradients(model))
    with pytest.raises(AssertionError) as fault:
        assert_every_gradient(model)
    assert all(repr(n) in str(fault.value) for n in names)


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
