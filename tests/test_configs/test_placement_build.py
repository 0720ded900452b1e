"""One context block right before the last residual block of res4 (ContextResNet
``blocks=(-2,)``, ``position='after_add'``): Levi & Ullman (ENL) Tables 2 / 4 "+1NL, BU"
(configs/enl) and Yuan et al. (OCNet) Table 12 "+NL" / "+ISA" (configs/ocnet).

Each config is built from its file (pretrained init off), runs one CPU
forward / backward on two 128 px images, has its single plugin exactly at the
output of ``layer3[-2]`` and receives gradients there; its parameter count
and overhead over the baseline are the ones the paper folder's README lists (OCNet's
overhead: configs/ocnet/metafile.yml, which also holds Table 12's schedules, checked in
tests/test_configs/test_ocnet.py).
"""
import os.path as osp

import pytest
import torch

import zoo_helpers
from det_helpers import CONFIGS, build_detector, train_step
from layer_helpers import assert_every_gradient, randomise_zeros
from mmctx.models.backbones import ContextBottleneck, ContextResNet

pytestmark = pytest.mark.usefixtures('mmdet_scope')

# config -> (baseline config, block type, plugin name inside the block)
PLACEMENTS = {
    'enl/faster-rcnn_r50_fpn-nl-bu_2xb2-360k_coco-800.py':
    ('enl/faster-rcnn_r50_fpn_2xb2-360k_coco-800.py', 'EfficientNonLocal2d', 'enl'),
    'enl/faster-rcnn_r50_fpn-nl-bu-dct_2xb2-360k_coco-800.py':
    ('enl/faster-rcnn_r50_fpn_2xb2-360k_coco-800.py', 'EfficientNonLocal2d', 'enl'),
    'enl/faster-rcnn_r50_fpn-nl-bu_2xb2-360k_coco-600.py':
    ('enl/faster-rcnn_r50_fpn_2xb2-360k_coco-600.py', 'EfficientNonLocal2d', 'enl'),
    'ocnet/mask-rcnn_r50_fpn-nl-c4_1x_coco.py':
    ('ocnet/mask-rcnn_r50_fpn_1x_coco.py', 'NonLocal2dBlock', 'nl'),
    'ocnet/mask-rcnn_r50_fpn-nl-c4_2x_coco.py':
    ('ocnet/mask-rcnn_r50_fpn_2x_coco.py', 'NonLocal2dBlock', 'nl'),
    'ocnet/mask-rcnn_r50_fpn-isa-c4_1x_coco.py':
    ('ocnet/mask-rcnn_r50_fpn_1x_coco.py', 'ResidualObjectContext', 'ocp'),
    'ocnet/mask-rcnn_r50_fpn-isa-c4_2x_coco.py':
    ('ocnet/mask-rcnn_r50_fpn_2x_coco.py', 'ResidualObjectContext', 'ocp'),
}


def readme_params(paper):
    """{config file: params in M} from the detection rows of ``configs/<paper>/README.md``."""
    return zoo_helpers.readme_params(paper, 'Detection')


def readme_overheads(paper):
    """{config file: overhead over its baseline in M}, the README's "(+x.xx)"."""
    return zoo_helpers.readme_overheads(paper, 'Detection')


def _plugins(backbone):
    """[(layer, block index, position, plugin name)] of every block plugin."""
    found = []
    for layer in backbone.res_layers:
        for j, block in enumerate(getattr(backbone, layer)):
            for pos in ('after_conv1', 'after_conv2', 'after_conv3', 'after_add'):
                for name in getattr(block, f'{pos}_plugin_names', []):
                    found.append((layer, j, pos, name))
    return found


def _numel(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize('config', sorted(PLACEMENTS))
def test_one_block_before_the_last_block_of_res4(config):
    baseline, block_type, name = PLACEMENTS[config]
    model, cfg = build_detector(osp.join(CONFIGS, config))
    backbone = model.backbone
    assert isinstance(backbone, ContextResNet) and backbone.depth == 50
    last = len(backbone.layer3) - 1
    assert _plugins(backbone) == [('layer3', last - 1, 'after_add', name)]
    assert cfg.model.backbone.plugins[0].cfg.type == block_type
    host = backbone.layer3[last - 1]
    assert isinstance(host, ContextBottleneck)
    plugin = getattr(host, name)

    calls = []
    plugin.register_forward_hook(lambda m, i, o: calls.append((i[0].shape, o.shape)))
    randomise_zeros(model)  # no identity start: every connected parameter gets a gradient
    loss = train_step(model, size=128)
    assert torch.isfinite(loss)
    assert_every_gradient(model)
    # run once per forward, on the 1024-channel c4 map at stride 16, shape kept
    assert calls == [(torch.Size([2, 1024, 8, 8]), torch.Size([2, 1024, 8, 8]))]
    grads = {n: p.grad for n, p in plugin.named_parameters()}
    assert grads and all(g is not None for g in grads.values())
    assert sum(float(g.abs().sum()) for g in grads.values()) > 0
    if block_type == 'EfficientNonLocal2d':  # N(0, 0.01) init: every weight learns at once
        assert all(g.abs().sum() > 0 for g in grads.values())

    paper = config.split('/')[0]
    file = osp.basename(config)
    base_model, _ = build_detector(osp.join(CONFIGS, baseline))
    ours, base = _numel(model) / 1e6, _numel(base_model) / 1e6
    assert ours == pytest.approx(readme_params(paper)[file], abs=0.006)
    assert base == pytest.approx(readme_params(paper)[osp.basename(baseline)], abs=0.006)
    assert ours - base == pytest.approx(_numel(plugin) / 1e6)
    if paper == 'ocnet':  # the overhead over the baseline that configs/ocnet/metafile.yml states
        from mmctx.utils.metafile import metafile_models
        overhead = metafile_models('ocnet')[file]['Metadata']['Parameters over baseline (M)']
        assert ours - base == pytest.approx(overhead, abs=0.006)
