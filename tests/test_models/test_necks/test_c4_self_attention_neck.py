"""C4SelfAttentionNeck (mmctx/models/necks/c4_self_attention_neck.py): Lee, Kim, Jung,
"Improving Object Detection Quality by Incorporating Global Contexts via Self-Attention" §3.3."""
import pytest
import torch

pytestmark = pytest.mark.usefixtures('mmdet_scope')


def test_c4_neck():
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='C4SelfAttentionNeck', in_channels=16,
                             attention_cfg=dict(type='BottleneckSelfAttention',
                                                num_heads=2)))
    x = torch.randn(2, 16, 6, 6)
    out, = neck((x, ))
    torch.testing.assert_close(out, neck.attention(x))
    with pytest.raises(ValueError, match='1 input levels'):
        neck((x, x))
    with pytest.raises(ValueError, match='C4'):
        neck((torch.randn(2, 16, 1, 1), ))
