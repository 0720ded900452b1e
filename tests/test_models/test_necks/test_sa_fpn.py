"""SAFPN (mmctx/models/necks/sa_fpn.py): Lee, Kim, Jung, "Improving Object Detection Quality
by Incorporating Global Contexts via Self-Attention" §3.3, self-attention on C5 before P5."""
import pytest
import torch

from det_helpers import fpn_inputs as _fpn_inputs

pytestmark = pytest.mark.usefixtures('mmdet_scope')


def test_safpn_attends_c5_before_p5():
    import mmctx  # noqa: F401
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='SAFPN', in_channels=[8, 16, 32, 64],
                             out_channels=8, num_outs=5,
                             attention_cfg=dict(type='BottleneckSelfAttention',
                                                reduction=4, num_heads=2)))
    plain = MODELS.build(dict(type='FPN', in_channels=[8, 16, 32, 64],
                              out_channels=8, num_outs=5))
    plain.load_state_dict(neck.state_dict(), strict=False)
    xs = _fpn_inputs()
    ref = plain(xs[:3] + [neck.attention(xs[3])])
    for o, r in zip(neck(xs), ref):
        torch.testing.assert_close(o, r)
    assert neck.attention.__class__.__name__ == 'BottleneckSelfAttention'
