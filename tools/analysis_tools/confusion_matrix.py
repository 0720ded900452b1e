"""Confusion matrix of a segmentor's (or detector's) predictions on its config's test set.

    python tools/test.py CONFIG CKPT --out work_dirs/pred          # mmseg: label maps
    python tools/analysis_tools/confusion_matrix.py CONFIG work_dirs/pred \
        --out work_dirs/confusion.png

PREDICTION is what ``tools/test.py --out`` writes for an mmseg config: a
directory of predicted label maps ``<image name>.png`` (label + 1 when the
data set reduces the zero label, as mmseg's ``IoUMetric`` saves them); a
``.pkl`` list of mmseg results (dicts with ``img_path`` and
``pred_sem_seg``, as mmengine's ``DumpResults`` writes them) is read too.
The ground truth is the config's test set, loaded as mmseg's
``LoadAnnotations`` does (``reduce_zero_label``, ``label_map``).

``matrix[i, j]`` counts the pixels of ground-truth class i predicted as
class j (pixels labelled ``ignore_index`` in the ground truth are left out).
The PNG shows it normalised per row (each ground-truth class sums to 100 %);
the per-class IoU printed is derived from it,
``IoU_c = M[c, c] / (sum_j M[c, j] + sum_i M[i, c] - M[c, c])``, the IoU of
mmseg's ``IoUMetric``.

Detection (an ``mmdet`` config; PREDICTION is the ``.pkl`` of
``tools/test.py CONFIG CKPT --out results.pkl``) follows mmdet's convention,
with a background row and column: each detection scoring at least
``--score-thr`` counts once in ``M[gt class, its class]`` for every
ground-truth box it overlaps with IoU >= ``--tp-iou-thr``, and once in
``M[background, its class]`` when it overlaps none; a ground-truth box that no
detection of its class overlaps counts in ``M[its class, background]``.
Crowd (ignored) boxes are left out.
"""
import argparse
import copy
import os
import os.path as osp
import pickle

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar


def confusion_matrix(gt, pred, num_classes, ignore_index=255):
    """(num_classes, num_classes) int64 counts, rows ground truth, columns prediction."""
    gt = np.asarray(gt).astype(np.int64).ravel()
    pred = np.asarray(pred).astype(np.int64).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f'ground truth and prediction differ in size: {gt.size} vs {pred.size}')
    # every predicted pixel must be a class, even where the ground truth is ignored
    keep = gt != ignore_index
    for name, labels, also in (('ground truth', gt[keep], f' nor ignore_index {ignore_index}'),
                               ('prediction', pred, '')):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if bad.size:
            raise ValueError(f'{name} label {int(bad[0])} is not a class index '
                             f'(0..{num_classes - 1}){also}')
    return np.bincount(gt[keep] * num_classes + pred[keep],
                       minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_from_confusion(matrix):
    """Per-class IoU; NaN for a class neither in the ground truth nor predicted."""
    matrix = np.asarray(matrix, dtype=np.float64)
    inter = np.diag(matrix)
    union = matrix.sum(1) + matrix.sum(0) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / union, np.nan)


def normalize_rows(matrix):
    """Each row divided by its sum (a row of zeros stays zeros)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    sums = matrix.sum(1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def box_iou(a, b):
    """(len(a), len(b)) IoU of boxes (x1, y1, x2, y2)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(-1)
    union = area_a[:, None] + area_b[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def detection_confusion_matrix(gt_boxes, gt_labels, boxes, labels, scores, num_classes,
                               score_thr=0.3, iou_thr=0.5):
    """(C + 1, C + 1) counts of one image, index C being the background (see the module doc)."""
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    keep = np.asarray(scores).reshape(-1) >= score_thr
    labels = np.asarray(labels, np.int64).reshape(-1)[keep]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)[keep]
    hits = box_iou(boxes, gt_boxes) >= iou_thr  # (detections, ground truth)
    det_idx, gt_idx = np.nonzero(hits)
    np.add.at(matrix, (gt_labels[gt_idx], labels[det_idx]), 1)
    np.add.at(matrix, (num_classes, labels[~hits.any(1)]), 1)
    found = (hits & (labels[:, None] == gt_labels[None])).any(0)
    np.add.at(matrix, (gt_labels[~found], num_classes), 1)
    return matrix


def build_test_set(cfg, scope):
    from mmctx.utils import register_all_modules
    register_all_modules(init_default_scope=scope)
    if scope == 'mmdet':
        from mmdet.registry import DATASETS
    else:
        from mmseg.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    dataset_cfg.pipeline = []
    return DATASETS.build(dataset_cfg)


def load_annotation_transform(cfg):
    """mmseg's LoadAnnotations with the arguments the config's test pipeline gives it."""
    from mmseg.registry import TRANSFORMS
    for step in cfg.test_dataloader.dataset.get('pipeline', []):
        if step['type'] in ('LoadAnnotations', 'mmseg.LoadAnnotations'):
            return TRANSFORMS.build(step)
    return TRANSFORMS.build(dict(type='LoadAnnotations'))


def read_predictions(path):
    """image stem -> (label map, whether it is saved as label + 1 if reduce_zero_label)."""
    if osp.isdir(path):
        names = sorted(n for n in os.listdir(path) if n.endswith('.png'))
        if not names:
            raise FileNotFoundError(f'no predicted label map (.png) in {path}')
        return {osp.splitext(n)[0]: (osp.join(path, n), True) for n in names}
    if not osp.isfile(path):
        raise FileNotFoundError(f'prediction not found: {path}')
    if not path.endswith(('.pkl', '.pickle')):
        raise ValueError(f'prediction must be a directory of label maps or a .pkl, got {path}')
    with open(path, 'rb') as f:
        results = pickle.load(f)
    preds = {}
    for i, result in enumerate(results):
        if 'pred_sem_seg' not in result or 'img_path' not in result:
            raise KeyError(f'{path}: result {i} has no pred_sem_seg / img_path '
                           '(not an mmseg result)')
        data = result['pred_sem_seg']['data']
        data = data.cpu().numpy() if hasattr(data, 'cpu') else np.asarray(data)
        preds[osp.splitext(osp.basename(result['img_path']))[0]] = (data.squeeze(), False)
    return preds


def load_prediction(entry):
    value, saved = entry
    if isinstance(value, str):
        from PIL import Image
        value = np.array(Image.open(value))
    return value, saved


def compute_detection(cfg, prediction, score_thr=0.3, iou_thr=0.5):
    """(matrix, class names + ['background']) of a detection .pkl against the test set."""
    if not prediction.endswith(('.pkl', '.pickle')):
        raise ValueError(f'a detection prediction is the .pkl of tools/test.py --out, '
                         f'got {prediction}')
    if not osp.isfile(prediction):
        raise FileNotFoundError(f'prediction not found: {prediction}')
    dataset = build_test_set(cfg, 'mmdet')
    classes = list(dataset.metainfo['classes'])
    with open(prediction, 'rb') as f:
        results = pickle.load(f)
    by_id = {}
    for i, result in enumerate(results):
        if 'pred_instances' not in result or 'img_id' not in result:
            raise KeyError(f'{prediction}: result {i} has no pred_instances / img_id '
                           '(not an mmdet detection result)')
        by_id[result['img_id']] = result['pred_instances']
    matrix = np.zeros((len(classes) + 1, len(classes) + 1), np.int64)
    progress = ProgressBar(len(dataset))
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        if info['img_id'] not in by_id:
            raise FileNotFoundError(f'{prediction} has no prediction for image '
                                    f'{info["img_id"]} ({info["img_path"]})')
        pred = {k: v.numpy() if hasattr(v, 'numpy') else np.asarray(v)
                for k, v in by_id[info['img_id']].items() if k in ('bboxes', 'labels', 'scores')}
        gts = [inst for inst in info['instances'] if not inst.get('ignore_flag', 0)]
        matrix += detection_confusion_matrix(
            [g['bbox'] for g in gts], [g['bbox_label'] for g in gts], pred['bboxes'],
            pred['labels'], pred['scores'], len(classes), score_thr, iou_thr)
        progress.update()
    print()
    return matrix, classes + ['background']


def compute(cfg, prediction):
    """(matrix, class names) of PREDICTION against the config's test set."""
    dataset = build_test_set(cfg, 'mmseg')
    load_ann = load_annotation_transform(cfg)
    classes = dataset.metainfo['classes']
    ignore_index = cfg.get('test_evaluator', {}).get('ignore_index', 255)
    preds = read_predictions(prediction)
    matrix = np.zeros((len(classes), len(classes)), np.int64)
    progress = ProgressBar(len(dataset))
    for i in range(len(dataset)):
        info = copy.deepcopy(dataset.get_data_info(i))
        stem = osp.splitext(osp.basename(info['img_path']))[0]
        if stem not in preds:
            raise FileNotFoundError(f'{prediction} has no prediction for {info["img_path"]}')
        gt = load_ann(info)['gt_seg_map']
        pred, saved_plus_one = load_prediction(preds[stem])
        pred = pred.astype(np.int64)
        if saved_plus_one and info.get('reduce_zero_label', False):
            pred = pred - 1  # IoUMetric saves label + 1 for reduce_zero_label data
        if pred.shape != gt.shape:
            raise ValueError(f'prediction of {stem} is {pred.shape[1]}x{pred.shape[0]}, '
                             f'its ground truth {gt.shape[1]}x{gt.shape[0]}')
        try:
            matrix += confusion_matrix(gt, pred, len(classes), ignore_index)
        except ValueError as err:
            raise ValueError(f'{stem}: {err}') from None
        progress.update()
    print()
    return matrix, list(classes)


def plot_matrix(matrix, classes, out, title='Normalized confusion matrix'):
    """Save the row-normalised matrix (percent in each cell) as an image."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    norm = normalize_rows(matrix) * 100
    n = len(classes)
    size = max(5, 0.6 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(norm, cmap='Blues', vmin=0, vmax=100)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='% of the ground-truth class')
    ax.set_xticks(range(n), classes, rotation=45, ha='right')
    ax.set_yticks(range(n), classes)
    ax.set_xlabel('prediction')
    ax.set_ylabel('ground truth')
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f'{norm[i, j]:.0f}', ha='center', va='center', fontsize=8,
                        color='white' if norm[i, j] > 50 else 'black')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def print_iou(matrix, classes):
    iou = iou_from_confusion(matrix)
    width = max(len(c) for c in classes) + 2
    print(f'{"class":<{width}} IoU (%)')
    for name, value in zip(classes, iou):
        print(f'{name:<{width}} {100 * value:.2f}')
    print(f'{"mIoU":<{width}} {100 * np.nanmean(iou):.2f}')
    return iou


def print_detection(matrix, classes):
    """Per class: ground-truth boxes found by a detection of the class, missed, and
    detections of the class on background."""
    width = max(len(c) for c in classes) + 2
    print(f'{"class":<{width}} {"found":>7} {"missed":>7} {"on bg":>7}')
    for c, name in enumerate(classes[:-1]):
        print(f'{name:<{width}} {matrix[c, c]:>7} {matrix[c, -1]:>7} {matrix[-1, c]:>7}')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Confusion matrix of saved segmentation (per-class IoU) or detection '
        'predictions')
    parser.add_argument('config', help='the config the predictions were made with')
    parser.add_argument('prediction',
                        help='mmseg: directory of label maps (tools/test.py --out) or a .pkl; '
                        'mmdet: the .pkl of tools/test.py --out')
    parser.add_argument('--out', default='confusion_matrix.png',
                        help='PNG of the row-normalised matrix')
    parser.add_argument('--save-matrix', help='also save the counts (.npy)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: the lowest score of a detection counted')
    parser.add_argument('--tp-iou-thr', type=float, default=0.5,
                        help='detection: the IoU from which a detection matches a box')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    """Returns (matrix of counts, class names, per-class IoU)."""
    args = parse_args(argv)
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from mmctx.utils import task_scope
    try:
        scope = task_scope(cfg)
    except ValueError as err:
        raise ValueError(f'{args.config}: {err}') from None
    if scope == 'mmdet':
        matrix, classes = compute_detection(cfg, args.prediction, args.score_thr,
                                            args.tp_iou_thr)
    else:
        matrix, classes = compute(cfg, args.prediction)
    if args.save_matrix:
        np.save(args.save_matrix, matrix)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    plot_matrix(matrix, classes, args.out)
    print(f'saved {args.out}')
    if scope == 'mmdet':
        print_detection(matrix, classes)
        return matrix, classes, None
    iou = print_iou(matrix, classes)
    return matrix, classes, iou


if __name__ == '__main__':
    main()
