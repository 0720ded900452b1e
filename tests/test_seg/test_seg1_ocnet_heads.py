"""OCNet heads (seed 004 §3.3-3.4) and every seed 004 segmentation config."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from seg_helpers import build_segmentor, seg_configs, train_step

OCNET_CONFIGS = seg_configs('ocnet')
HEAD = dict(in_channels=32, channels=16, num_classes=5, in_index=0,
            norm_cfg=dict(type='BN'), dropout_ratio=0.0)


def _head(cfg):
    import mmctx  # noqa: F401
    torch.manual_seed(0)
    return MODELS.build(dict(HEAD, **cfg)).eval()


@pytest.mark.parametrize('attention', ['sa', 'isa'])
def test_base_oc_is_reduce_ocp_concat_fuse(attention):
    ocp_cfg = dict(groups=(2, 2)) if attention == 'isa' else None
    head = _head(dict(type='BaseOCHead', attention=attention, ocp_cfg=ocp_cfg))
    x = torch.randn(2, 32, 6, 5)
    with torch.no_grad():
        reduced = head.reduce(x)
        expected = head.conv_seg(head.fuse(torch.cat([reduced, head.ocp(reduced)], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_pyramid_oc_attends_each_region_independently():
    head = _head(dict(type='PyramidOCHead', attention='sa', pyramid_scales=(1, 2)))
    x = torch.randn(1, 32, 4, 6)
    with torch.no_grad():
        r = head.reduce(x)
        whole = head.ocps[0](r)
        quarters = torch.cat([torch.cat([head.ocps[1](r[..., :2, :3]),
                                         head.ocps[1](r[..., :2, 3:])], -1),
                              torch.cat([head.ocps[1](r[..., 2:, :3]),
                                         head.ocps[1](r[..., 2:, 3:])], -1)], -2)
        expected = head.conv_seg(head.fuse(torch.cat([whole, quarters, head.expand(r)], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)
    assert head.expand.conv.out_channels == 2 * 16  # 512 -> 2048 in the paper (x4)


def test_pyramid_oc_too_small_map_names_head_and_sizes():
    head = _head(dict(type='PyramidOCHead', attention='sa'))
    with pytest.raises(ValueError, match=r'PyramidOCHead.*6x6.*4x4'):
        head([torch.randn(1, 32, 4, 4)])


def test_asp_oc_branches():
    head = _head(dict(type='ASPOCHead', attention='isa', dilations=(2, 3, 4),
                      ocp_cfg=dict(groups=(2, 2))))
    x = torch.randn(1, 32, 7, 9)
    with torch.no_grad():
        outs = [head.ocp(head.context_reduce(x))] + [b(x) for b in head.branches]
        expected = head.conv_seg(head.fuse(torch.cat(outs, 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)
    assert head.fuse.conv.in_channels == 5 * 16  # 1280 -> 256 in the paper


def test_sa2x_runs_the_ocp_on_the_pooled_map():
    head = _head(dict(type='BaseOCHead', attention='sa', downsample=2))
    x = torch.randn(1, 32, 6, 8)
    with torch.no_grad():
        r = head.reduce(x)
        ctx = F.interpolate(head.ocp(F.avg_pool2d(r, 2, ceil_mode=True)), size=(6, 8),
                            mode='bilinear', align_corners=False)
        expected = head.conv_seg(head.fuse(torch.cat([r, ctx], 1)))
        assert torch.allclose(head([x]), expected, atol=1e-5)


def test_every_table_row_has_a_config():
    names = {osp.basename(p).split('_')[0] for p in OCNET_CONFIGS}
    for method in ('dilated', 'ppm', 'aspp', 'baseoc-sa', 'baseoc-isa', 'pyramidoc-sa',
                   'pyramidoc-isa', 'aspoc-sa', 'aspoc-isa', 'baseoc-isa-g4x4',
                   'baseoc-isa-g16x16', 'baseoc-isa-localglobal', 'baseoc-sa2x', 'rcca'):
        assert method in names, method


@pytest.mark.parametrize('path', OCNET_CONFIGS, ids=osp.basename)
def test_config_builds_and_trains_one_step(path):
    model, cfg = build_segmentor(path)
    assert cfg.model.backbone.depth in (50, 101)
    loss = train_step(model, size=64)
    assert torch.isfinite(loss)
    head_grads = [p.grad for p in model.decode_head.parameters()]
    assert all(g is not None for g in head_grads)
