"""AttentionalClassFeature (mmctx/models/layers/acf.py) against per-position sums of
Zhang et al., "ACFNet: Attentional Class Feature Network for Semantic Segmentation",
Eqs. 1-2 (class centers as the P-weighted mean); float64."""
import pytest
import torch

from mmctx.models.layers import AttentionalClassFeature, attentional_class_feature
from layer_helpers import randomise  # noqa: E402


def _reference(feats, probs):
    _, c, h, w = feats.shape
    k = probs.shape[1]
    pos = [(i, j) for i in range(h) for j in range(w)]
    out = torch.zeros_like(feats)
    for bi in range(feats.shape[0]):
        centers = []  # Eq. 1
        for cls in range(k):
            norm = sum(probs[bi, cls, i, j] for i, j in pos)
            centers.append([sum(probs[bi, cls, i, j] * feats[bi, ch, i, j] for i, j in pos)
                            / norm for ch in range(c)])
        for i, j in pos:  # Eq. 2
            for ch in range(c):
                out[bi, ch, i, j] = sum(probs[bi, cls, i, j] * centers[cls][ch]
                                        for cls in range(k))
    return out


def test_acf_matches_eqs_1_and_2():
    torch.manual_seed(0)
    feats = torch.randn(2, 3, 2, 3, dtype=torch.double)
    probs = torch.randn(2, 4, 2, 3, dtype=torch.double).softmax(1)
    torch.testing.assert_close(attentional_class_feature(feats, probs, eps=0),
                               _reference(feats, probs), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('num_classes', [4, 1])
def test_module_is_coarse_softmax_acf_and_fuse(num_classes):
    block = AttentionalClassFeature(3, num_classes, norm_cfg=None, eps=0)
    block = randomise(block, 0, std=0.5).double().eval()
    x = torch.randn(2, 3, 2, 3, dtype=torch.double)
    with torch.no_grad():
        coarse = (torch.einsum('kc,bchw->bkhw', block.coarse_seg.weight[:, :, 0, 0], x)
                  + block.coarse_seg.bias[None, :, None, None])
        probs = coarse.softmax(1) if num_classes > 1 else coarse.sigmoid()
        cat = torch.cat([x, _reference(x, probs)], 1)
        fused = (torch.einsum('oc,bchw->bohw', block.fuse.conv.weight[:, :, 0, 0], cat)
                 + block.fuse.conv.bias[None, :, None, None]).relu()
        out, got_coarse = block.forward_with_coarse(x)
        torch.testing.assert_close(got_coarse, coarse)
        torch.testing.assert_close(out, fused, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(block(x), fused, rtol=1e-10, atol=1e-10)
        p = probs.flatten(2).transpose(1, 2)  # (B, HW, K)
        torch.testing.assert_close(block.get_class_attention(x), p)
        # Eqs. 1-2 as one map of the positions: F_a = A F, A (B, 1, HW, HW)
        attn = block.get_attention(x)
        assert attn.shape == (2, 1, 6, 6)
        feats_a = (attn[:, 0] @ x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(x.shape)
        torch.testing.assert_close(feats_a, _reference(x, probs), rtol=1e-10, atol=1e-10)
        assert block.attention_normalised == (num_classes > 1)
        if num_classes > 1:
            torch.testing.assert_close(attn.sum(-1), torch.ones(2, 1, 6, dtype=x.dtype))


def test_acf_bad_args():
    with pytest.raises(ValueError, match='num_classes'):
        AttentionalClassFeature(8, 0)
    with pytest.raises(ValueError, match='norm_cfg'):
        AttentionalClassFeature(8, 3, norm_cfg=dict(type='NoSuchNorm'))
