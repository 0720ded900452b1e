"""GloReHead (mmctx/models/decode_heads/glore_head.py): a ContextBlockHead with the GloRe
unit (Chen et al., "Graph-Based Global Reasoning Networks"); the unit is tested in
test_layers/test_glore.py, the layout in test_context_block_head.py."""
import pytest
import torch
from mmseg.registry import MODELS

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_glore_head_arguments_reach_the_unit():
    import mmctx  # noqa: F401
    head = MODELS.build(dict(type='GloReHead', in_channels=16, channels=8, state_channels=6,
                             num_nodes=5, num_classes=3, norm_cfg=dict(type='BN')))
    u = head.context_block
    assert (u.state_channels, u.num_nodes) == (6, 5)
    assert isinstance(u.norm, torch.nn.BatchNorm2d)  # the head's norm_cfg
    default = MODELS.build(dict(type='GloReHead', in_channels=32, channels=16,
                                num_classes=3, norm_cfg=dict(type='BN')))
    assert (default.context_block.state_channels, default.context_block.num_nodes) == (8, 2)


def test_glore_head_without_norm_works():
    """norm_cfg=None (mmseg's default): no norm anywhere, the unit's included."""
    import mmctx  # noqa: F401
    head = MODELS.build(dict(type='GloReHead', in_channels=16, channels=8, num_classes=3))
    assert isinstance(head.context_block.norm, torch.nn.Identity)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in head.modules())
    out = head([torch.randn(2, 16, 4, 4)])
    assert out.shape == (2, 3, 4, 4) and torch.isfinite(out).all()

