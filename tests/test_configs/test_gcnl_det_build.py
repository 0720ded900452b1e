"""Woo et al., Global Context and Geometric Priors for Effective Non-Local
Self-Attention: every detection / instance / panoptic row builds and trains one step
(the EBFPN neck itself: tests/test_models/test_necks/test_ebfpn.py)."""
import os.path as osp

import pytest
import torch

from mmctx.analysis import count_parameters
from mmctx.utils.metafile import metafile_models
from det_helpers import (CONFIGS, build_detector, check_test_dev_config, step_exemptions,
                         train_step)
from layer_helpers import assert_every_gradient, randomise_zeros

pytestmark = pytest.mark.usefixtures('mmdet_scope')

# the detection / instance / panoptic configs, as configs/gcnl/metafile.yml lists them
# (each one's settings against its row, the twins' entries and the neck overheads against
# the paper's: tests/test_configs/test_gcnl.py)
ZOO = {name: m for name, m in metafile_models('gcnl').items()
          if m['Metadata']['Task'] != 'Semantic Segmentation'}
ALL_CONFIGS = sorted(osp.join(CONFIGS, 'gcnl', name) for name in ZOO)
# Table 2 is on COCO test-dev: each of its configs has a -test-dev twin (same model)
TEST_DEV = [p for p in ALL_CONFIGS if p.endswith('-test-dev.py')]
GCNL_CONFIGS = [p for p in ALL_CONFIGS if p not in TEST_DEV]


def test_every_table_row_has_a_config():
    names = {osp.basename(p) for p in GCNL_CONFIGS}
    for model in ('retinanet_r50_fpn', 'fcos_r50-caffe_fpn_gn-head', 'faster-rcnn_r50_fpn',
                  'mask-rcnn_r50_fpn', 'cascade-mask-rcnn_r50_fpn',
                  'panoptic-fpn_r50_fpn', 'panoptic-fpn_r101_fpn'):
        for neck in ('', '-bfpn', '-ebfpn'):
            assert f'{model}{neck}_1x_coco.py' in names


@pytest.mark.parametrize('path', TEST_DEV, ids=osp.basename)
def test_test_dev_configs(path):
    check_test_dev_config(path)


@pytest.mark.parametrize('path', GCNL_CONFIGS, ids=osp.basename)
def test_config_builds_and_trains_one_step(path):
    model, cfg = build_detector(path)
    # the metafile's "Parameters (M)": trainable parameters, the paper's convention
    ours = ZOO[osp.basename(path)]['Metadata']['Parameters (M)']
    assert count_parameters(model)['trainable'] / 1e6 == pytest.approx(ours, abs=0.006)
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    loss = train_step(model)
    assert torch.isfinite(loss)
    assert_every_gradient(model, step_exemptions(cfg))  # FCOS P5-P7, cascade P4-P5
