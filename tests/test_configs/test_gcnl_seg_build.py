"""Woo et al. (GCNL) Table 1: every row's config (the ACF and GloRe rows included) builds and
trains one step. The heads against their equations: tests/test_models/test_decode_heads/
(test_gcnl_head.py, test_acf_head.py, test_glore_head.py)."""
import os.path as osp

import pytest
import torch

from mmctx.utils.metafile import REPO, metafile_models
from layer_helpers import assert_every_gradient, randomise_zeros
from seg_helpers import build_segmentor, train_step

pytestmark = pytest.mark.usefixtures('mmseg_scope')

# the Table 1 configs, as configs/gcnl/metafile.yml lists them (each one's settings
# against its row: tests/test_configs/test_gcnl.py)
ZOO = {name: m for name, m in metafile_models('gcnl').items()
          if m['Metadata']['Task'] == 'Semantic Segmentation'}
GCNL_SEG_CONFIGS = sorted(osp.join(REPO, 'configs', 'gcnl', name) for name in ZOO)


def test_every_table_row_has_a_config():
    names = {osp.basename(p) for p in GCNL_SEG_CONFIGS}
    for data in ('4xb2-80k_cityscapes-512x1024', '4xb4-160k_ade20k-512x512',
                 '4xb4-80k_pascal-context-480x480'):
        for method in ('fcn', 'aspp', 'psp', 'enc', 'acf', 'gc', 'da', 'glore', 'gcnl'):
            assert f'{method}_r50-d8-mg124_{data}.py' in names


@pytest.mark.parametrize('path', GCNL_SEG_CONFIGS, ids=osp.basename)
def test_config_builds_and_trains_one_step(path):
    model, cfg = build_segmentor(path)
    assert cfg.model.backbone.multi_grid == (1, 2, 4)
    # the metafile's "Parameters (M)": trainable parameters of the segmentor
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ours = ZOO[osp.basename(path)]['Metadata']['Parameters (M)']
    assert trainable / 1e6 == pytest.approx(ours, abs=0.006)
    assert cfg.model.get('auxiliary_head') is None  # Woo et al. (GCNL): no auxiliary loss
    assert cfg.custom_imports.imports == ['mmctx']
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    loss = train_step(model, size=64)
    assert torch.isfinite(loss)
    assert_every_gradient(model)
