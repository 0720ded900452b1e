"""EfficientAttentionHead (mmctx/models/decode_heads/efficient_attention_head.py): a
ContextBlockHead with efficient attention (Shen et al., "Efficient Attention: Attention
with Linear Complexities"); the block is tested in test_layers/test_efficient_attention.py,
the layout in test_context_block_head.py."""
import pytest
from mmseg.registry import MODELS

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_efficient_attention_head_arguments_reach_the_block():
    import mmctx  # noqa: F401
    head = MODELS.build(dict(type='EfficientAttentionHead', in_channels=16, channels=8,
                             num_heads=2, key_channels=6, value_channels=2, num_classes=3))
    b = head.context_block
    assert (b.num_heads, b.key_channels, b.value_channels) == (2, 6, 2)
    default = MODELS.build(dict(type='EfficientAttentionHead', in_channels=32, channels=16,
                                num_classes=3))
    b = default.context_block
    assert (b.num_heads, b.key_channels, b.value_channels) == (8, 8, 8)
    with pytest.raises(ValueError, match='key_channels'):
        MODELS.build(dict(type='EfficientAttentionHead', in_channels=16, channels=8,
                          num_heads=3, num_classes=3))
