"""Every seg-2 config (seed 000 Table 1 ACF / GloRe rows) builds and runs one step on a 64x64 crop.

The seed 001 Cityscapes configs (configs/gcnet) are walked in test_seg3_gcnet_configs.py.
"""
import glob
import os.path as osp

import pytest
import torch

from seg_helpers import CONFIGS, build_segmentor, train_step

SEG2 = sorted(glob.glob(osp.join(CONFIGS, 'gcnl', 'acf_*.py'))
              + glob.glob(osp.join(CONFIGS, 'gcnl', 'glore_*.py')))


def test_configs_found():
    assert len(SEG2) == 6


@pytest.mark.parametrize('path', SEG2, ids=osp.basename)
def test_config_one_step(path):
    model, cfg = build_segmentor(path)
    assert cfg.custom_imports.imports == ['mmctx']
    loss = train_step(model, size=64, batch=2)
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.decode_head.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)

