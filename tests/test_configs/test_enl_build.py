"""Every ENL detector config (Levi & Ullman, "Efficient Coarse-to-Fine Non-Local Module for
the Detection of Small Objects", configs/enl/) builds, has the metafile's parameter count and
trains one step; every trainable parameter gets a gradient."""
import os.path as osp

import pytest
import torch

from det_helpers import CONFIGS, build_detector, train_step
from layer_helpers import assert_every_gradient, randomise_zeros
from mmctx.utils.metafile import metafile_models

pytestmark = pytest.mark.usefixtures('mmdet_scope')

# every ENL config is a detector (configs/enl/metafile.yml lists them; no config walk here)
ENL_CONFIGS = sorted(osp.join(CONFIGS, 'enl', name) for name in metafile_models('enl'))


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('path', ENL_CONFIGS, ids=osp.basename)
def test_enl_config_one_step(path):
    model, cfg = build_detector(path)
    # the metafile's "Parameters (M)": all params, frozen ones included (the settings of
    # each config against its row: tests/test_configs/test_enl.py)
    ours = metafile_models('enl')[osp.basename(path)]['Metadata']['Parameters (M)']
    assert _count(model) / 1e6 == pytest.approx(ours, abs=0.006)
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    loss = train_step(model, size=128)
    assert torch.isfinite(loss)
    assert_every_gradient(model)
    grads = [p.grad for n, p in model.named_parameters()
             if 'td_blocks' in n and p.requires_grad]
    if cfg.model.neck.type == 'ENLFPN':
        assert len(model.neck.td_blocks) == 3
        assert grads and all(g is not None for g in grads)
