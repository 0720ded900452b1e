"""fwIoU and boundary F-score against direct computations on hand-made label pairs.

The references below are written from the definitions (loops over pixels and
explicit distances), not from the metric code.
"""
import math

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import mmctx  # noqa: F401

pytestmark = pytest.mark.usefixtures('mmseg_scope')

CLASSES = ('bg', 'square', 'bar', 'unused')
# image 1 (6x6): class 0 background, 1 a square, 2 a bar; 255 ignored
LABEL1 = np.array([[0, 0, 0, 0, 2, 2],
                   [0, 1, 1, 0, 2, 2],
                   [0, 1, 1, 0, 2, 2],
                   [0, 0, 0, 0, 2, 2],
                   [0, 0, 0, 0, 0, 0],
                   [255, 255, 0, 0, 0, 0]])
PRED1 = np.array([[0, 0, 0, 0, 0, 2],
                  [0, 1, 1, 1, 2, 2],
                  [0, 1, 1, 0, 2, 2],
                  [0, 0, 0, 0, 2, 2],
                  [0, 0, 0, 0, 0, 0],
                  [1, 1, 0, 0, 0, 0]])
# image 2 (5x7): no square in the label, a false square in the prediction;
# the bar is shifted by one column
LABEL2 = np.array([[0, 0, 2, 2, 0, 0, 0],
                   [0, 0, 2, 2, 0, 0, 0],
                   [0, 0, 2, 2, 0, 0, 0],
                   [0, 0, 2, 2, 0, 0, 0],
                   [0, 0, 2, 2, 0, 0, 0]])
PRED2 = np.array([[0, 0, 0, 2, 2, 0, 0],
                  [0, 0, 0, 2, 2, 0, 0],
                  [0, 0, 0, 2, 2, 1, 0],
                  [0, 0, 0, 2, 2, 0, 0],
                  [0, 0, 0, 2, 2, 0, 0]])
PAIRS = [(PRED1, LABEL1), (PRED2, LABEL2)]


def _run(cfg, pairs=PAIRS):
    metric = METRICS.build(cfg)
    metric.dataset_meta = dict(classes=CLASSES)
    for pred, label in pairs:
        sample = SegDataSample()
        sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred)[None])
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None])
        metric.process({}, [sample.to_dict()])
    return metric.evaluate(len(pairs))


def test_fwiou_matches_direct_computation():
    inter, union, freq = np.zeros(4), np.zeros(4), np.zeros(4)
    for pred, label in PAIRS:
        for i in range(label.shape[0]):
            for j in range(label.shape[1]):
                g, p = label[i, j], pred[i, j]
                if g == 255:
                    continue
                freq[g] += 1
                if p == g:
                    inter[g] += 1
                    union[g] += 1
                else:
                    union[g] += 1
                    union[p] += 1
    freq /= freq.sum()
    iou = np.divide(inter, union, out=np.zeros(4), where=union > 0)
    expected = 100 * (freq * iou).sum()
    result = _run(dict(type='FWIoUMetric'))
    assert result['fwIoU'] == pytest.approx(expected, abs=0.01)
    # the square (class 1, 4 px of 52) has a much lower IoU than the rest:
    # frequency weighting must differ from the plain mean
    assert result['fwIoU'] != pytest.approx(result['mIoU'], abs=1.0)


def _boundary(mask):
    """A mask pixel with a 4-neighbour inside the image that is not in the mask."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    for i in range(h):
        for j in range(w):
            if mask[i, j] and any(0 <= i + a < h and 0 <= j + b < w and not mask[i + a, j + b]
                                  for a, b in ((-1, 0), (1, 0), (0, -1), (0, 1))):
                out[i, j] = True
    return out


def _matched(src, dst, d):
    """Number of pixels of src within Euclidean distance d of some pixel of dst."""
    pts = [(i, j) for i, j in zip(*np.nonzero(dst))]
    return sum(1 for i, j in zip(*np.nonzero(src))
               if any(math.hypot(i - a, j - b) <= d for a, b in pts))


def _direct_bf(d):
    """Csurka et al.: F per class per image, mean over images with the class, mean over classes."""
    per_class = {c: [] for c in range(len(CLASSES))}
    for pred, label in PAIRS:
        valid = label != 255
        for c in per_class:
            p, g = (pred == c) & valid, (label == c) & valid
            if not p.any() and not g.any():
                continue  # class absent from this image
            pb, gb = _boundary(p), _boundary(g)
            if not pb.any() and not gb.any():
                f = 1.0
            elif not pb.any() or not gb.any():
                f = 0.0
            else:
                prec, rec = _matched(pb, gb, d) / pb.sum(), _matched(gb, pb, d) / gb.sum()
                f = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            per_class[c].append(f)
    return 100 * np.mean([np.mean(v) for v in per_class.values() if v])


@pytest.mark.parametrize('d', [0, 1, 3])
def test_boundary_fscore_matches_direct_computation(d):
    result = _run(dict(type='BoundaryFScoreMetric', tolerances=(d, )))
    assert result[f'BF@{d}px'] == pytest.approx(_direct_bf(d), abs=0.01)


def test_boundary_fscore_at_the_paper_tolerances():
    result = _run(dict(type='BoundaryFScoreMetric'))
    assert list(result) == ['BF@3px', 'BF@5px', 'BF@9px', 'BF@12px']
    for d in (3, 5, 9, 12):
        assert result[f'BF@{d}px'] == pytest.approx(_direct_bf(d), abs=0.01)


def test_boundary_fscore_tolerance_matters_and_perfect_is_100():
    strict = _run(dict(type='BoundaryFScoreMetric', tolerances=(0, )))['BF@0px']
    loose = _run(dict(type='BoundaryFScoreMetric', tolerances=(1, )))['BF@1px']
    assert strict < loose  # the one-column shift is forgiven at 1 px only
    perfect = _run(dict(type='BoundaryFScoreMetric', tolerances=(0, )),
                   pairs=[(LABEL1.clip(0, 3), LABEL1), (LABEL2, LABEL2)])
    assert perfect['BF@0px'] == pytest.approx(100.0)


def test_one_evaluator_reports_miou_fwiou_and_bf():
    plain = _run(dict(type='FWIoUMetric'))
    both = _run(dict(type='FWIoUMetric', bf_tolerances=(1, 3)))
    assert both['mIoU'] == plain['mIoU'] and both['fwIoU'] == plain['fwIoU']
    for d in (1, 3):
        assert both[f'BF@{d}px'] == pytest.approx(_direct_bf(d), abs=0.01)


def test_bad_arguments():
    with pytest.raises(ValueError, match='tolerances'):
        METRICS.build(dict(type='BoundaryFScoreMetric', tolerances=(-1, )))
    metric = METRICS.build(dict(type='BoundaryFScoreMetric'))
    with pytest.raises(ValueError, match='differ in size'):
        metric.image_scores(PRED1, LABEL2, 4)
