"""GCNLHead (mmctx/models/decode_heads/gcnl_head.py), Woo et al. (GCNL) Table 1: a
ContextBlockHead with the GCNL block. Its layout against mmseg's FCNHead is in
test_context_block_head.py; here, that its arguments reach the block."""
import pytest
from mmseg.registry import MODELS

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_gcnl_head_arguments_reach_the_block():
    import mmctx  # noqa: F401
    head = MODELS.build(dict(type='GCNLHead', in_channels=32, channels=16, num_heads=4,
                             reduction=1, attn_drop=0.2, num_classes=5,
                             block_cfg=dict(use_rel_pos=False, impl='explicit')))
    block = head.context_block
    assert (block.num_heads, block.channels, block.attn_drop) == (4, 16, 0.2)
    assert (block.use_rel_pos, block.impl, block.use_context) == (False, 'explicit', True)
    default = MODELS.build(dict(type='GCNLHead', in_channels=32, channels=16, num_classes=5))
    assert (default.context_block.num_heads, default.context_block.channels,
            default.context_block.attn_drop) == (8, 8, 0.1)


def test_init_weights_restores_the_block_identity_start():
    """mmengine's init_weights reaches the block (no reaching in by attribute name)."""
    import torch
    import mmctx  # noqa: F401
    head = MODELS.build(dict(type='GCNLHead', in_channels=32, channels=16, num_heads=4,
                             num_classes=5))
    torch.nn.init.normal_(head.context_block.out.weight)
    head.init_weights()
    assert head.context_block.out.weight.abs().sum() == 0
