"""Frequency-weighted IoU (Lee et al. Table 4), :class:`FWIoUMetric`.

mmseg's ``IoUMetric`` (aAcc, mIoU, ...) plus
``fwIoU = sum_c (n_c / sum_k n_k) * IoU_c``, where n_c is the number of
ground-truth pixels of class c over the whole data set (ignored pixels
excluded) and ``IoU_c = |P_c & G_c| / |P_c | G_c|`` is accumulated over the
data set exactly as mmseg's mIoU. A class absent from the ground truth has
n_c = 0 and adds nothing. Reported in percent. With ``bf_tolerances`` the
same evaluator also reports the boundary F-score of
:mod:`.boundary_fscore_metric`, so a config needs a single evaluator dict (as ``tools/test.py --out`` expects).
"""
from typing import Dict, Optional, Sequence

from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

from .boundary_fscore_metric import BoundaryFScoreMetric, summarize_boundary_fscore

__all__ = ['FWIoUMetric']


@METRICS.register_module()
class FWIoUMetric(IoUMetric):
    """``IoUMetric`` (aAcc, mIoU, ...) with ``fwIoU`` added, and optionally the
    boundary F-score, all in percent, from one evaluator.

    Args:
        bf_tolerances: when given (e.g. ``(3, 5, 9, 12)``), also report
            ``BF@{d}px`` exactly as :class:`BoundaryFScoreMetric` does.
        **kwargs: every argument of mmseg's ``IoUMetric`` (``iou_metrics``,
            ``ignore_index``, ``output_dir``, ``format_only``, ...).
    """

    def __init__(self, bf_tolerances: Optional[Sequence[float]] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.boundary = None
        if bf_tolerances:
            self.boundary = BoundaryFScoreMetric(tolerances=bf_tolerances,
                                                 ignore_index=self.ignore_index)

    def process(self, data_batch, data_samples) -> None:
        start = len(self.results)
        super().process(data_batch, data_samples)
        if self.boundary is None or self.format_only:
            return
        num_classes = len(self.dataset_meta['classes'])
        # one IoU 4-tuple per sample was appended: extend it with the BF scores
        for i, sample in enumerate(data_samples):
            pred = sample['pred_sem_seg']['data'].squeeze(0).cpu().numpy()
            label = sample['gt_sem_seg']['data'].squeeze(0).cpu().numpy()
            self.results[start + i] = tuple(self.results[start + i]) + (
                self.boundary.image_scores(pred, label, num_classes), )

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if self.format_only:
            return super().compute_metrics(results)
        iou_results = [r[:4] for r in results]
        metrics = super().compute_metrics(iou_results)
        columns = tuple(zip(*iou_results))
        intersect = sum(columns[0]).double()
        union = sum(columns[1]).double()
        label = sum(columns[3]).double()
        freq = label / label.sum().clamp(min=1)
        iou = intersect / union.clamp(min=1)  # union = 0 implies n_c = 0
        metrics['fwIoU'] = round(float((freq * iou).sum()) * 100, 2)
        if self.boundary is not None:
            metrics.update(summarize_boundary_fscore(
                [r[4] for r in results], self.boundary.tolerances, self.dataset_meta['classes']))
        return metrics
