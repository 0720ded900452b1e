"""Boundary F-score (Yuan et al. (OCNet) Table 6), :class:`BoundaryFScoreMetric`.

The BF score of Csurka et al. (BMVC 2013), with the distance threshold
given in pixels (3, 5, 9 and 12 px as in Yuan et al. (OCNet) Table 6):

* boundary of a binary mask: its pixels that have a 4-neighbour inside
  the image that is not in the mask (the image border is no boundary);
* for one image and class c, with B_p / B_g the boundaries of the
  predicted / ground-truth masks of c: precision P = fraction of B_p
  within Euclidean distance d of some pixel of B_g, recall R = fraction of
  B_g within d of B_p, F_c = 2PR / (P + R) (0 when P + R = 0). A class
  present in an image (in the ground truth or the prediction) whose
  boundary is empty in one map only scores 0; empty in both (the class
  fills the image in both maps) scores 1;
* the score of class c is the mean of F_c over the images in which c is
  present, and ``BF@{d}px`` the mean of the class scores over the classes
  present in at least one image (Yuan et al. (OCNet) Table 6, "mean" column).

Ignored pixels (``ignore_index``) belong to no class in either map, so
the border of an ignored region is a boundary of both maps, as in the
Cityscapes boundary evaluation of Gated-SCNN / SegFix. Per-class scores
are printed as a table, like mmseg's ``IoUMetric``.
"""
from collections import OrderedDict
from typing import Dict, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable
from scipy.ndimage import distance_transform_edt

__all__ = ['BoundaryFScoreMetric', 'mask_boundary', 'boundary_fscore', 'summarize_boundary_fscore']


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of a boolean mask with a 4-neighbour inside the image outside it."""
    # pad with True: the outside of the image is never a neighbour outside the mask
    padded = np.pad(mask, 1, constant_values=True)
    interior = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return mask & ~interior


def boundary_fscore(pred_mask: np.ndarray, gt_mask: np.ndarray,
                    tolerances: Sequence[float]) -> np.ndarray:
    """F of one class in one image at each tolerance (module docstring).

    Args:
        pred_mask, gt_mask: boolean masks of the class (ignored pixels False).
        tolerances: distances d in pixels.

    Returns:
        (len(tolerances),) float array.
    """
    pb, gb = mask_boundary(pred_mask), mask_boundary(gt_mask)
    if not pb.any() and not gb.any():
        return np.ones(len(tolerances))
    if not pb.any() or not gb.any():
        return np.zeros(len(tolerances))
    to_gt = distance_transform_edt(~gb)[pb]  # distance of each B_p pixel to B_g
    to_pred = distance_transform_edt(~pb)[gb]
    out = np.zeros(len(tolerances))
    for t, d in enumerate(tolerances):
        p, r = (to_gt <= d).mean(), (to_pred <= d).mean()
        out[t] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return out


@METRICS.register_module()
class BoundaryFScoreMetric(BaseMetric):
    """Boundary F-score at several pixel tolerances (see the module docstring).

    Reports ``BF@{d}px`` for each tolerance d, in percent.

    Args:
        tolerances: distances d in pixels (Yuan et al. (OCNet) Table 6: 3, 5, 9, 12).
        ignore_index: label of ignored pixels.
    """

    def __init__(self, tolerances: Sequence[float] = (3, 5, 9, 12), ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        tolerances = tuple(tolerances)
        if not tolerances or min(tolerances) < 0:
            raise ValueError(f'tolerances must be non-negative pixels, got {tolerances}')
        self.tolerances = tolerances
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy()
            label = sample['gt_sem_seg']['data'].squeeze(0).cpu().numpy()
            self.results.append(self.image_scores(pred, label, num_classes))

    def image_scores(self, pred: np.ndarray, label: np.ndarray, num_classes: int):
        """F of every class of one image, and which classes are present.

        Returns:
            tuple: (tolerances, classes) float array (NaN where the class is
            absent) and a (classes,) bool array of present classes.
        """
        if pred.shape != label.shape:
            raise ValueError(f'BoundaryFScoreMetric: prediction {pred.shape} and label '
                             f'{label.shape} differ in size')
        valid = label != self.ignore_index
        scores = np.full((len(self.tolerances), num_classes), np.nan)
        present = np.zeros(num_classes, dtype=bool)
        for c in range(num_classes):
            p, g = (pred == c) & valid, (label == c) & valid
            if p.any() or g.any():
                present[c] = True
                scores[:, c] = boundary_fscore(p, g, self.tolerances)
        return scores, present

    def compute_metrics(self, results: list) -> Dict[str, float]:
        return summarize_boundary_fscore(results, self.tolerances, self.dataset_meta['classes'])


def summarize_boundary_fscore(results: list, tolerances: Sequence[float],
                              classes: Sequence[str]) -> Dict[str, float]:
    """``BF@{d}px`` from per-image (scores, present) pairs; logs a per-class table."""
    scores = np.stack([s for s, _ in results])  # (images, tolerances, classes)
    counts = np.stack([p for _, p in results]).sum(0)  # (classes,)
    sums = np.nansum(scores, axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        per_class = np.where(counts > 0, sums / counts, np.nan)  # (tolerances, classes)
    metrics = OrderedDict()
    table = PrettyTable()
    table.add_column('Class', list(classes))
    for t, d in enumerate(tolerances):
        seen = per_class[t][counts > 0]
        metrics[f'BF@{d}px'] = round(float(seen.mean()) * 100, 2) if seen.size else 0.0
        table.add_column(f'BF@{d}px', np.round(per_class[t] * 100, 2).tolist())
    logger: MMLogger = MMLogger.get_current_instance()
    print_log('per class boundary F-score:', logger)
    print_log('\n' + table.get_string(), logger=logger)
    return metrics
