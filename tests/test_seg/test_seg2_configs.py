"""Every seg-2 config (seed 000 Table 1 ACF / GloRe rows) builds and runs one step on a 64x64 crop."""
import glob
import os.path as osp

import pytest
import torch

from seg_helpers import CONFIGS, build_segmentor, train_step

SEG2 = sorted(glob.glob(osp.join(CONFIGS, 'gcnl', 'acf_*.py'))
              + glob.glob(osp.join(CONFIGS, 'gcnl', 'glore_*.py'))
              + glob.glob(osp.join(CONFIGS, 'gcnet', '*_cityscapes-769x769.py')))


def test_configs_found():
    assert len(SEG2) == 12


@pytest.mark.parametrize('path', SEG2, ids=osp.basename)
def test_config_one_step(path):
    model, cfg = build_segmentor(path)
    assert cfg.custom_imports.imports == ['mmctx']
    loss = train_step(model, size=64, batch=2)
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.decode_head.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def _params(path):
    model, _ = build_segmentor(path)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('name,overhead', [('nl-head', 0.26e6), ('gc-head-att-add', 0.13e6)])
def test_table12_overhead_over_baseline(name, overhead):
    """seed 001 Table 12a: 71.22M (NL) / 71.09M (GC) vs 70.96M baseline; within 5%."""
    cfg = osp.join(CONFIGS, 'gcnet', '{}_r101-d8_4xb2-60k_cityscapes-769x769.py')
    diff = _params(cfg.format(name)) - _params(cfg.format('fcn-concat'))
    assert abs(diff - overhead) <= 0.05 * overhead
