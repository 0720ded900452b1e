"""EfficientAttention2d (mmctx/models/layers/efficient_attention.py) against a
per-position loop over Shen et al., "Efficient Attention: Attention with Linear
Complexities", Eq. 3, and against dot-product attention (the equivalence of their
§3.2 holds for the scaling normalisation; with softmaxes the formed
rho_q(Q) rho_k(K)^T is still a valid n x n map, computed here left-to-right);
weights shared, float64."""
import math

import pytest
import torch

from mmctx.models.layers import EfficientAttention2d
from layer_helpers import randomise  # noqa: E402


def _conv1x1(conv, x):
    return (torch.einsum('oc,bchw->bohw', conv.weight[:, :, 0, 0], x)
            + conv.bias[None, :, None, None])


def _reference(block, x):
    """Slow Eq. 3: per head, query position i, value channel c, sum over keys / channels."""
    b, _, h, w = x.shape
    n, heads = h * w, block.num_heads
    q = _conv1x1(block.query, x).flatten(2)
    k = _conv1x1(block.key, x).flatten(2)
    v = _conv1x1(block.value, x).flatten(2)
    dk, dv = q.shape[1] // heads, v.shape[1] // heads
    out = torch.zeros(b, v.shape[1], n, dtype=x.dtype)
    for bi in range(b):
        for hd in range(heads):
            qs = q[bi, hd * dk:(hd + 1) * dk]
            ks = k[bi, hd * dk:(hd + 1) * dk]
            vs = v[bi, hd * dv:(hd + 1) * dv]
            for i in range(n):
                eq = [math.exp(qs[j, i].item()) for j in range(dk)]
                rq = [e / sum(eq) for e in eq]  # rho_q: softmax over channels
                for c in range(dv):
                    acc = 0.0
                    for j in range(dk):
                        ek = [math.exp(ks[j, m].item()) for m in range(n)]
                        g = sum(ek[m] / sum(ek) * vs[c, m].item() for m in range(n))
                        acc += rq[j] * g  # rho_q(Q)_ij (rho_k(K)^T V)_jc
                    out[bi, hd * dv + c, i] = acc
    return x + _conv1x1(block.reproject, out.reshape(b, -1, h, w))


def _block():
    block = EfficientAttention2d(8, key_channels=4, value_channels=6, num_heads=2)
    return randomise(block, 0, std=0.5).double()


def test_efficient_attention_matches_eq3():
    block = _block()
    x = torch.randn(2, 8, 3, 2, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _reference(block, x), rtol=1e-10, atol=1e-10)


def test_equals_the_formed_map_left_to_right():
    """(rho_q(Q) rho_k(K)^T) V, the n x n map formed first, gives the same output."""
    block = _block()
    x = torch.randn(1, 8, 4, 3, dtype=torch.double)
    with torch.no_grad():
        q = block.query(x).flatten(2).reshape(1, 2, 2, 12).softmax(2)  # (B, h, dk, n)
        k = block.get_key_maps(x)  # rho_k(K)^T, (B, h, dk, n)
        v = block.value(x).flatten(2).reshape(1, 2, 3, 12)
        formed = q.transpose(2, 3) @ k  # (B, h, n, n)
        torch.testing.assert_close(formed.sum(-1), torch.ones(1, 2, 12, dtype=x.dtype))
        torch.testing.assert_close(block.get_attention(x), formed)
        out = (formed @ v.transpose(2, 3)).transpose(2, 3).reshape(1, 6, 4, 3)
        torch.testing.assert_close(block(x), x + block.reproject(out), rtol=1e-10, atol=1e-10)


def test_key_maps_are_rho_k_over_positions():
    block = _block()
    x = torch.randn(2, 8, 3, 2, dtype=torch.double)
    with torch.no_grad():
        attn = block.get_key_maps(x)
        k = block.key(x).flatten(2).reshape(2, 2, 2, 6)
        assert attn.shape == (2, 2, 2, 6)
        torch.testing.assert_close(attn, k.exp() / k.exp().sum(-1, keepdim=True))


def test_efficient_attention_bad_args():
    with pytest.raises(ValueError, match='key_channels'):
        EfficientAttention2d(8, key_channels=6, num_heads=4)
    with pytest.raises(ValueError, match='value_channels'):
        EfficientAttention2d(8, key_channels=4, value_channels=6, num_heads=4)
    with pytest.raises(ValueError, match='in_channels'):
        EfficientAttention2d(0)
