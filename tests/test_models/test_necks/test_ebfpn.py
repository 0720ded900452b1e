"""EBFPN (mmctx/models/necks/ebfpn.py): Woo et al., "Global Context and Geometric Priors for
Effective Non-Local Self-Attention", the balanced feature pyramid refined by a GCNL block."""
import pytest
import torch
from mmdet.registry import MODELS

import mmctx  # noqa: F401  (registration)

pytestmark = pytest.mark.usefixtures('mmdet_scope')


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
