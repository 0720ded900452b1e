"""EfficientAttentionHead against a per-position loop over Shen et al. Eq. 3."""
import math

import pytest
import torch

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def _reference(block, x):
    """Slow Eq. 3: for each head, query position i, value channel c, sum over keys/channels."""
    b, _, h, w = x.shape
    n, heads = h * w, block.num_heads
    q = block.query(x).flatten(2)
    k = block.key(x).flatten(2)
    v = block.value(x).flatten(2)
    dk, dv = q.shape[1] // heads, v.shape[1] // heads
    out = torch.zeros(b, v.shape[1], n, dtype=x.dtype)
    for bi in range(b):
        for hd in range(heads):
            qs = q[bi, hd * dk:(hd + 1) * dk]
            ks = k[bi, hd * dk:(hd + 1) * dk]
            vs = v[bi, hd * dv:(hd + 1) * dv]
            for i in range(n):
                eq = [math.exp(qs[j, i].item()) for j in range(dk)]
                rq = [e / sum(eq) for e in eq]  # softmax over channels
                for c in range(dv):
                    acc = 0.0
                    for j in range(dk):
                        ek = [math.exp(ks[j, m].item()) for m in range(n)]
                        g = sum(ek[m] / sum(ek) * vs[c, m].item() for m in range(n))
                        acc += rq[j] * g
                    out[bi, hd * dv + c, i] = acc
    return x + block.reproject(out.view(b, -1, h, w))


def test_efficient_attention_matches_equation():
    from mmctx.models.decode_heads.efficient_attention_head import EfficientAttention2d
    torch.manual_seed(0)
    block = EfficientAttention2d(8, key_channels=4, value_channels=4, num_heads=2).double()
    x = torch.randn(1, 8, 3, 3, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _reference(block, x))


def test_efficient_attention_bad_heads():
    from mmctx.models.decode_heads.efficient_attention_head import EfficientAttention2d
    with pytest.raises(ValueError, match='key_channels'):
        EfficientAttention2d(8, key_channels=6, num_heads=4)


def test_efficient_attention_head_forward_backward():
    import mmctx  # noqa: F401
    from mmseg.registry import MODELS
    head = MODELS.build(dict(type='EfficientAttentionHead', in_channels=16, channels=8,
                             num_heads=2, num_classes=3, norm_cfg=dict(type='BN')))
    out = head([torch.randn(2, 16, 5, 5)])
    assert out.shape == (2, 3, 5, 5)
    out.sum().backward()
    assert head.ea_block.query.weight.grad.abs().sum() > 0
