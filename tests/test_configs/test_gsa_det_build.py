"""Every GSA detection config (Lee, Kim, Jung, "Improving Object Detection Quality by
Incorporating Global Contexts via Self-Attention", configs/gsa/) builds, has the README's
parameter count and trains one step; every trainable parameter gets a gradient."""
import os.path as osp

import pytest
import torch

from det_helpers import build_detector, det_configs, train_step
from layer_helpers import assert_every_gradient, randomise_zeros
from zoo_helpers import readme_params

pytestmark = pytest.mark.usefixtures('mmdet_scope')

GSA_CONFIGS = det_configs('gsa')


def _count(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('path', GSA_CONFIGS, ids=osp.basename)
def test_gsa_config_one_step(path):
    # test only: few RoIs through the C5 RoI head of the C4 detectors (CPU time)
    small = dict()
    if 'c4' in osp.basename(path):
        small = {'model.train_cfg.rpn_proposal.max_per_img': 32,
                 'model.train_cfg.rcnn.sampler.num': 16}
    model, cfg = build_detector(path, **small)
    name = osp.basename(path)
    ours = readme_params('gsa', 'Detection')[name]
    assert _count(model) / 1e6 == pytest.approx(ours, abs=0.006)  # README: all params
    assert cfg.model.backbone.depth == (101 if 'r101' in name else 50)
    assert (cfg.model.get('neck', {}).get('type') in ('SAFPN', 'C4SelfAttentionNeck')) == ('gsa' in name)
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    loss = train_step(model, size=128)
    assert torch.isfinite(loss)
    assert_every_gradient(model)
    neck = cfg.model.get('neck')
    if neck and neck.type in ('SAFPN', 'C4SelfAttentionNeck'):
        att = model.neck.attention
        assert len(att.layers) == neck.attention_cfg.num_layers if hasattr(att, 'layers') else True
        assert all(p.grad is not None for p in att.parameters())
