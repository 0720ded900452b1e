"""fwIoU and boundary F-score against direct computations on hand-made maps."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import mmctx  # noqa: F401

# a 6x6 hand-made pair: class 0 background, 1 a square, 2 a bar; 255 ignored
LABEL = np.array([[0, 0, 0, 0, 2, 2],
                  [0, 1, 1, 0, 2, 2],
                  [0, 1, 1, 0, 2, 2],
                  [0, 0, 0, 0, 2, 2],
                  [0, 0, 0, 0, 0, 0],
                  [255, 255, 0, 0, 0, 0]])
PRED = np.array([[0, 0, 0, 0, 0, 2],
                 [0, 1, 1, 1, 2, 2],
                 [0, 1, 1, 0, 2, 2],
                 [0, 0, 0, 0, 2, 2],
                 [0, 0, 0, 0, 0, 0],
                 [1, 1, 0, 0, 0, 0]])


def _run(cfg):
    metric = METRICS.build(cfg)
    metric.dataset_meta = dict(classes=('bg', 'square', 'bar'))
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(PRED)[None])
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(LABEL)[None])
    metric.process({}, [sample.to_dict()])
    return metric.evaluate(1)


def test_fwiou_matches_direct_computation():
    valid = LABEL != 255
    ious, freqs = [], []
    for c in range(3):
        p, g = (PRED == c) & valid, (LABEL == c) & valid
        ious.append((p & g).sum() / (p | g).sum())
        freqs.append(g.sum() / valid.sum())
    expected = 100 * sum(f * i for f, i in zip(freqs, ious))
    result = _run(dict(type='FWIoUMetric'))
    assert result['fwIoU'] == pytest.approx(expected, abs=0.01)
    assert 'mIoU' in result


def _boundary(mask):
    """Direct definition: a mask pixel with a 4-neighbour outside the mask or image."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for i in range(h):
        for j in range(w):
            if not mask[i, j]:
                continue
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                a, b = i + di, j + dj
                if not (0 <= a < h and 0 <= b < w) or not mask[a, b]:
                    out[i, j] = True
    return out


def _near(src, dst, d):
    """Pixels of src within Euclidean distance d of some pixel of dst (loops)."""
    pts = np.argwhere(dst)
    return sum(1 for p in np.argwhere(src)
               if len(pts) and np.sqrt(((pts - p)**2).sum(1)).min() <= d)


@pytest.mark.parametrize('d', [0, 1, 3])
def test_boundary_fscore_matches_direct_computation(d):
    valid = LABEL != 255
    scores = []
    for c in range(3):
        pb = _boundary((PRED == c) & valid)
        gb = _boundary((LABEL == c) & valid)
        precision = _near(pb, gb, d) / pb.sum() if pb.sum() else 0.0
        recall = _near(gb, pb, d) / gb.sum() if gb.sum() else 0.0
        f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(f)
    result = _run(dict(type='BoundaryFScoreMetric', tolerances=(d, )))
    assert result[f'BF@{d}px'] == pytest.approx(100 * np.mean(scores), abs=0.01)


def test_boundary_fscore_is_perfect_on_perfect_prediction():
    metric = METRICS.build(dict(type='BoundaryFScoreMetric'))
    counts = metric.boundary_counts(LABEL, LABEL, 3)
    assert (counts[..., 0] == counts[..., 1]).all() and (counts[..., 2] == counts[..., 3]).all()


def test_bad_tolerance():
    with pytest.raises(ValueError, match='tolerances'):
        METRICS.build(dict(type='BoundaryFScoreMetric', tolerances=(-1, )))
