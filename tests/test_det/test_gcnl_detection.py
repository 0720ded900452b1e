"""Woo et al., Global Context and Geometric Priors for Effective Non-Local
Self-Attention: detection / instance / panoptic, EBFPN and every table row."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS

from mmctx.analysis import count_parameters
from det_helpers import CONFIGS, build_detector, check_test_dev_config, det_configs, train_step
from zoo_helpers import readme_params, readme_rows

ALL_CONFIGS = det_configs('gcnl')
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


def test_every_table2_config_has_a_test_dev_twin():
    table2 = [name for name, cells in readme_rows('gcnl', 'Detection') if cells['Table'] == '2']
    assert len(table2) == 15
    assert sorted(osp.basename(p) for p in TEST_DEV) == sorted(
        n.replace('.py', '-test-dev.py') for n in table2)


@pytest.mark.parametrize('path', TEST_DEV, ids=osp.basename)
def test_test_dev_configs(path):
    check_test_dev_config(path)


@pytest.mark.parametrize('path', GCNL_CONFIGS, ids=osp.basename)
def test_config_builds_and_trains_one_step(path):
    model, _ = build_detector(path)
    # the README's "Our params": trainable parameters, the paper's convention
    ours = readme_params('gcnl', 'Detection')[osp.basename(path)]
    assert count_parameters(model)['trainable'] / 1e6 == pytest.approx(ours, abs=0.006)
    loss = train_step(model)
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > len(grads) // 2


# Woo et al. (GCNL) Tables 2-3, trainable parameters in M: (baseline, +BFPN, +EBFPN)
PAPER_PARAMS = {
    'retinanet_r50_fpn': (37.74, 38.01, 38.14),
    'faster-rcnn_r50_fpn': (41.53, 41.79, 41.93),
    'mask-rcnn_r50_fpn': (44.18, 44.44, 44.57),
    'panoptic-fpn_r50_fpn': (45.82, 46.08, 46.21),
}


@pytest.mark.parametrize('model', sorted(PAPER_PARAMS))
def test_neck_overheads_match_the_paper(model):
    counts = []
    for neck in ('', '-bfpn', '-ebfpn'):
        net, _ = build_detector(osp.join(CONFIGS, 'gcnl', f'{model}{neck}_1x_coco.py'))
        counts.append(count_parameters(net)['trainable'] / 1e6)
    base, bfpn, ebfpn = PAPER_PARAMS[model]
    assert abs(counts[0] - base) / base < 0.01
    for ours, paper in ((counts[1] - counts[0], bfpn - base),
                        (counts[2] - counts[0], ebfpn - base)):
        assert abs(ours - paper) / paper < 0.05, (ours, paper)


def _ebfpn(**kwargs):
    torch.manual_seed(0)
    neck = MODELS.build(dict(type='EBFPN', in_channels=16, num_levels=4, refine_level=1,
                             refine_cfg=dict(type='GCNLBlock', reduction=1, num_heads=2,
                                             sub_sample=True), **kwargs))
    for p in neck.refine.parameters():
        torch.nn.init.normal_(p, std=0.2)
    return neck.eval()


def test_ebfpn_gathers_averages_refines_and_redistributes():
    neck = _ebfpn()
    feats = [torch.randn(1, 16, 32 // 2**i, 24 // 2**i) for i in range(4)]
    size = feats[1].shape[-2:]
    gathered = [torch.nn.functional.adaptive_max_pool2d(feats[0], size), feats[1],
                torch.nn.functional.interpolate(feats[2], size=size),
                torch.nn.functional.interpolate(feats[3], size=size)]
    balanced = sum(gathered) / 4  # C = 1/L sum_l C_l
    refined = neck.refine(balanced)
    expected = [feats[0] + torch.nn.functional.interpolate(refined, size=feats[0].shape[-2:]),
                feats[1] + refined]
    expected += [f + torch.nn.functional.adaptive_max_pool2d(refined, f.shape[-2:])
                 for f in feats[2:]]
    with torch.no_grad():
        outs = neck(feats)
    for out, exp in zip(outs, expected):
        assert torch.allclose(out, exp, atol=1e-5)


def test_ebfpn_rejects_wrong_levels():
    neck = _ebfpn()
    with pytest.raises(ValueError, match='num_levels=4'):
        neck([torch.randn(1, 16, 8, 8)] * 3)
    with pytest.raises(ValueError, match='refine_level'):
        MODELS.build(dict(type='EBFPN', in_channels=16, num_levels=3, refine_level=3))
