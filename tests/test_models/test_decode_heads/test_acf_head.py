"""ACF module against per-position sums of ACFNet Eqs. 1-2; head trains both losses."""
import pytest
import torch

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def _reference(feats, probs):
    _, c, h, w = feats.shape
    k = probs.shape[1]
    pos = [(i, j) for i in range(h) for j in range(w)]
    centers = []
    for cls in range(k):
        norm = sum(probs[0, cls, i, j] for i, j in pos)
        centers.append([sum(probs[0, cls, i, j] * feats[0, ch, i, j] for i, j in pos) / norm
                        for ch in range(c)])
    out = torch.zeros_like(feats)
    for i, j in pos:
        for ch in range(c):
            out[0, ch, i, j] = sum(probs[0, cls, i, j] * centers[cls][ch] for cls in range(k))
    return out


def test_acf_matches_equations():
    from mmctx.models.decode_heads.acf_head import attentional_class_feature
    torch.manual_seed(0)
    feats = torch.randn(1, 3, 2, 3, dtype=torch.double)
    probs = torch.randn(1, 4, 2, 3, dtype=torch.double).softmax(1)
    torch.testing.assert_close(attentional_class_feature(feats, probs, eps=0),
                               _reference(feats, probs))


def test_acf_head_losses():
    import mmctx  # noqa: F401
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    head = MODELS.build(dict(type='ACFHead', in_channels=16, channels=8, num_classes=3,
                             norm_cfg=dict(type='BN')))
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(5, 5)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, 5, 5)))
        samples.append(s)
    losses = head.loss([torch.randn(2, 16, 5, 5)], samples, None)
    assert {'loss_ce', 'coarse.loss_ce'} <= set(losses)
    (losses['loss_ce'] + losses['coarse.loss_ce']).backward()
    assert head.coarse_seg.weight.grad.abs().sum() > 0
    assert head([torch.randn(1, 16, 5, 5)]).shape == (1, 3, 5, 5)
