"""Segmentation metrics the seed tables print and mmseg's IoUMetric lacks.

* :class:`FWIoUMetric` — mmseg's ``IoUMetric`` plus frequency-weighted IoU
  (seed 002 Table 4): ``fwIoU = sum_c (n_c / sum_k n_k) IoU_c`` with n_c the
  ground-truth pixels of class c over the data set (ignored pixels excluded).
* :class:`BoundaryFScoreMetric` — boundary F-score (seed 004 Table 6) at
  pixel tolerances d (3, 5, 9, 12): for every class, the boundary of a mask
  is its pixels with a 4-neighbour outside it (or outside the image);
  precision = predicted boundary pixels within d (Euclidean) of a ground-truth
  boundary pixel / predicted boundary pixels, recall the converse, summed over
  the data set; F = 2PR / (P + R). The score is the mean F over the classes
  that have a boundary in the ground truth or the prediction. Ignored pixels
  take no part (they are removed from both maps).
"""
from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS
from scipy.ndimage import distance_transform_edt

__all__ = ['FWIoUMetric', 'BoundaryFScoreMetric', 'mask_boundary']


@METRICS.register_module()
class FWIoUMetric(IoUMetric):
    """``IoUMetric`` (mIoU, aAcc, ...) with ``fwIoU`` added, in percent."""

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        columns = tuple(zip(*results))
        intersect = sum(columns[0]).double()
        union = sum(columns[1]).double()
        label = sum(columns[3]).double()
        present = union > 0
        iou = intersect[present] / union[present]
        freq = label[present] / label.sum()
        metrics['fwIoU'] = round(float((freq * iou).sum()) * 100, 2)
        return metrics


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of a boolean mask with a 4-neighbour outside it (or the image)."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = (padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] &
                padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~interior


@METRICS.register_module()
class BoundaryFScoreMetric(BaseMetric):
    """Boundary F-score at several pixel tolerances (see the module docstring).

    Args:
        tolerances: distances d in pixels (seed 004 Table 6: 3, 5, 9, 12).
        ignore_index: label of ignored pixels.
    """

    def __init__(self, tolerances: Sequence[int] = (3, 5, 9, 12), ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not tolerances or min(tolerances) < 0:
            raise ValueError(f'tolerances must be non-negative pixels, got {tolerances}')
        self.tolerances = tuple(tolerances)
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze().cpu().numpy()
            label = sample['gt_sem_seg']['data'].squeeze().cpu().numpy()
            self.results.append(self.boundary_counts(pred, label, num_classes))

    def boundary_counts(self, pred: np.ndarray, label: np.ndarray,
                        num_classes: int) -> np.ndarray:
        """(tolerances, classes, 4): matched/total predicted, matched/total true boundary px."""
        valid = label != self.ignore_index
        counts = np.zeros((len(self.tolerances), num_classes, 4), dtype=np.int64)
        for c in range(num_classes):
            pb = mask_boundary((pred == c) & valid)
            gb = mask_boundary((label == c) & valid)
            if not pb.any() and not gb.any():
                continue
            # distance of every pixel to the nearest boundary pixel of the other map
            to_gt = distance_transform_edt(~gb) if gb.any() else np.full(pb.shape, np.inf)
            to_pred = distance_transform_edt(~pb) if pb.any() else np.full(gb.shape, np.inf)
            for t, d in enumerate(self.tolerances):
                counts[t, c] = ((to_gt[pb] <= d).sum(), pb.sum(),
                                (to_pred[gb] <= d).sum(), gb.sum())
        return counts

    def compute_metrics(self, results: list) -> Dict[str, float]:
        total = np.sum(results, axis=0)  # (tolerances, classes, 4)
        metrics = OrderedDict()
        for t, d in enumerate(self.tolerances):
            matched_p, n_p, matched_g, n_g = total[t].T
            has = (n_p + n_g) > 0
            precision = np.divide(matched_p, n_p, out=np.zeros(len(n_p)), where=n_p > 0)
            recall = np.divide(matched_g, n_g, out=np.zeros(len(n_g)), where=n_g > 0)
            denom = precision + recall
            f = np.divide(2 * precision * recall, denom, out=np.zeros(len(denom)),
                          where=denom > 0)
            metrics[f'BF@{d}px'] = round(float(f[has].mean()) * 100, 2) if has.any() else 0.0
        return metrics
