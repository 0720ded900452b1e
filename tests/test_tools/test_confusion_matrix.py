"""tools/analysis_tools/confusion_matrix.py on the shapes label maps and
predictions made from them, against a pixel-by-pixel count and mmseg's IoUMetric."""
import os
import os.path as osp
import pickle
import shutil

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from PIL import Image

from tools_helpers import REPO, write_config

SEMANTIC = osp.join(REPO, 'configs', '_base_', 'datasets', 'shapes_semantic.py')
NUM_CLASSES = 6
CLASSES = ('circle', 'square', 'triangle', 'star', 'wall', 'floor')

CONFIG = '''
_base_ = {semantic!r}
default_scope = 'mmseg'
test_dataloader = dict(dataset=dict(
    data_root={root!r},
    data_prefix=dict(img_path={images!r}, seg_map_path={labels!r})))
'''


@pytest.fixture
def tool_cm(tool):
    return tool('analysis_tools/confusion_matrix.py')


@pytest.fixture
def data(tmp_path, shapes_root):
    """(config, prediction dir, {stem: (gt, pred)}): the shapes validation label
    maps with a band of ignored pixels, and predictions that are the ground
    truth with a block shifted to the next class and 10 % random labels."""
    labels = tmp_path / 'labels'
    labels.mkdir()
    pred_dir = tmp_path / 'pred'
    pred_dir.mkdir()
    rng = np.random.default_rng(0)
    pairs = {}
    for name in sorted(os.listdir(osp.join(shapes_root, 'semantic', 'val'))):
        gt = np.array(Image.open(osp.join(shapes_root, 'semantic', 'val', name)))
        gt[:, :5] = 255  # ignored
        Image.fromarray(gt).save(labels / name)
        pred = gt.copy()
        pred[gt == 255] = rng.integers(0, NUM_CLASSES, int((gt == 255).sum()))
        pred[40:70, 20:90] = (pred[40:70, 20:90] + 1) % NUM_CLASSES
        noisy = rng.random(gt.shape) < 0.1
        pred[noisy] = rng.integers(0, NUM_CLASSES, int(noisy.sum()))
        Image.fromarray(pred).save(pred_dir / name)
        pairs[osp.splitext(name)[0]] = (gt, pred)
    cfg = write_config(tmp_path, CONFIG.format(
        semantic=SEMANTIC, root=shapes_root, images=osp.join(shapes_root, 'images', 'val'),
        labels=str(labels)))
    return cfg, str(pred_dir), pairs


def slow_matrix(pairs):
    """Count pixel by pixel, ignored ground truth left out."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for gt, pred in pairs.values():
        for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist()):
            if g != 255:
                matrix[g, p] += 1
    return matrix


def test_matrix_and_iou_match_a_direct_count_and_mmseg(tool_cm, data, tmp_path, capsys):
    cfg, pred_dir, pairs = data
    out = tmp_path / 'cm.png'
    matrix, classes, iou = tool_cm.main([cfg, pred_dir, '--out', str(out),
                                         '--save-matrix', str(tmp_path / 'cm.npy')])
    expected = slow_matrix(pairs)
    assert classes == list(CLASSES)
    assert np.array_equal(matrix, expected)
    assert np.array_equal(np.load(tmp_path / 'cm.npy'), expected)
    assert matrix.sum() == sum(int((gt != 255).sum()) for gt, _ in pairs.values())
    assert out.stat().st_size > 1000
    # the IoU of mmseg's IoUMetric on the same label maps
    from mmseg.evaluation import IoUMetric
    with DefaultScope.overwrite_default_scope('mmseg'):
        metric = IoUMetric(iou_metrics=['mIoU'])
        metric.dataset_meta = dict(classes=CLASSES)
        for gt, pred in pairs.values():
            metric.process({}, [dict(pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                                     gt_sem_seg=dict(data=torch.from_numpy(gt)[None]))])
        areas = [sum(r[k] for r in metric.results) for k in range(4)]
        mmseg_iou = IoUMetric.total_area_to_metrics(*areas, ['mIoU'])['IoU']
        mmseg_miou = metric.compute_metrics(metric.results)['mIoU']
    assert iou == pytest.approx(np.asarray(mmseg_iou), rel=1e-6)  # mmseg counts in float32
    assert 0.3 < np.nanmean(iou) < 0.95  # the perturbations cost some IoU, not all
    printed = capsys.readouterr().out
    assert f'mIoU {100 * np.nanmean(iou):.2f}' in ' '.join(printed.split())
    assert round(100 * np.nanmean(iou), 2) == pytest.approx(mmseg_miou, abs=0.006)


def test_row_normalisation_and_iou_by_hand(tool_cm):
    matrix = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 6]])
    norm = tool_cm.normalize_rows(matrix)
    assert norm[0] == pytest.approx([0.75, 0.25, 0]) and (norm[1] == 0).all()
    assert norm[2] == pytest.approx([0.25, 0, 0.75])
    # class 0: 3 / (4 + 5 - 3); class 1: never in the ground truth, predicted once: 0;
    # class 2: 6 / (8 + 6 - 6)
    assert tool_cm.iou_from_confusion(matrix) == pytest.approx([0.5, 0.0, 0.75])
    assert np.isnan(tool_cm.iou_from_confusion(np.diag([2, 0]))[1])


def test_a_pkl_of_results_gives_the_same_matrix(tool_cm, data, tmp_path):
    cfg, pred_dir, pairs = data
    results = [dict(img_path=f'/somewhere/{stem}.png',
                    pred_sem_seg=dict(data=torch.from_numpy(pred.astype(np.int64))[None]))
               for stem, (_, pred) in pairs.items()]
    pkl = tmp_path / 'results.pkl'
    pkl.write_bytes(pickle.dumps(results))
    matrix, _, _ = tool_cm.main([cfg, str(pkl), '--out', str(tmp_path / 'cm.png')])
    assert np.array_equal(matrix, slow_matrix(pairs))


def test_bad_predictions_are_named(tool_cm, data, tmp_path):
    cfg, pred_dir, pairs = data
    first = sorted(pairs)[0]
    partial = tmp_path / 'partial'
    shutil.copytree(pred_dir, partial)
    os.remove(partial / f'{first}.png')
    with pytest.raises(FileNotFoundError, match=f'no prediction for .*{first}.png'):
        tool_cm.main([cfg, str(partial), '--out', str(tmp_path / 'x.png')])
    gt, pred = pairs[first]
    pred = pred.copy()
    pred[0, 0] = 9
    Image.fromarray(pred).save(osp.join(pred_dir, f'{first}.png'))
    with pytest.raises(ValueError, match=f'{first}: prediction label 9 is not a class index'):
        tool_cm.main([cfg, pred_dir, '--out', str(tmp_path / 'x.png')])
    with pytest.raises(FileNotFoundError, match='prediction not found: .*nothing.pkl'):
        tool_cm.main([cfg, str(tmp_path / 'nothing.pkl')])
    other = write_config(tmp_path, "default_scope = 'mmpretrain'\n", 'other.py')
    with pytest.raises(ValueError, match="default_scope must be mmdet or mmseg, got 'mmpretrain'"):
        tool_cm.main([other, pred_dir])


# ---------------------------------------------------------------- detection
def slow_detection_matrix(gt_boxes, gt_labels, boxes, labels, scores, num_classes,
                          score_thr, iou_thr):
    """mmdet's convention, one detection and one box at a time."""
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / union if union > 0 else 0.0
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    found = [False] * len(gt_boxes)
    for box, label, score in zip(boxes, labels, scores):
        if score < score_thr:
            continue
        overlapped = False
        for g, (gt_box, gt_label) in enumerate(zip(gt_boxes, gt_labels)):
            if iou(box, gt_box) >= iou_thr:
                overlapped = True
                matrix[gt_label, label] += 1
                if gt_label == label:
                    found[g] = True
        if not overlapped:
            matrix[num_classes, label] += 1
    for g, gt_label in enumerate(gt_labels):
        if not found[g]:
            matrix[gt_label, num_classes] += 1
    return matrix


def test_detection_matrix_by_hand(tool_cm):
    gt_boxes = [[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]
    gt_labels = [0, 1, 1]
    boxes = [[0, 0, 10, 11],        # class 0 on the class-0 box: found
             [21, 20, 30, 30],      # class 0 on a class-1 box: confused
             [100, 100, 110, 110],  # class 1 on background
             [0, 0, 10, 10]]        # class 1 on the class-0 box, below the score threshold
    matrix = tool_cm.detection_confusion_matrix(gt_boxes, gt_labels, boxes, [0, 0, 1, 1],
                                                [0.9, 0.8, 0.7, 0.1], 2, 0.3, 0.5)
    # rows: ground truth circle / square / background; both class-1 boxes are missed
    assert matrix.tolist() == [[1, 0, 0], [1, 0, 2], [0, 1, 0]]


def test_detection_matrix_matches_the_slow_count(tool_cm):
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_gt, n_det = rng.integers(0, 6), rng.integers(0, 9)
        xy = rng.uniform(0, 40, (n_gt, 2))
        gt = np.concatenate([xy, xy + rng.uniform(5, 20, (n_gt, 2))], 1)
        # detections: jittered boxes and random ones
        src = gt[rng.integers(0, max(n_gt, 1), n_det)] if n_gt else np.zeros((n_det, 4))
        det = src + rng.normal(0, 3, (n_det, 4))
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        gl, dl = rng.integers(0, 3, n_gt), rng.integers(0, 3, n_det)
        sc = rng.uniform(0, 1, n_det)
        assert np.array_equal(
            tool_cm.detection_confusion_matrix(gt, gl, det, dl, sc, 3, 0.3, 0.5),
            slow_detection_matrix(gt.tolist(), gl.tolist(), det.tolist(), dl.tolist(),
                                  sc.tolist(), 3, 0.3, 0.5))


def test_detection_results_pkl(tool_cm, tmp_path, shapes_root):
    """Detections made from the shapes ground truth: one box relabelled, one
    shifted off its object, one on background, one below the threshold."""
    import json
    cfg = write_config(tmp_path, (
        "_base_ = {!r}\ndefault_scope = 'mmdet'\n"
        "test_dataloader = dict(dataset=dict(data_root={!r}))\n").format(
            osp.join(REPO, 'configs', '_base_', 'datasets', 'shapes_detection.py'),
            shapes_root), 'det.py')
    coco = json.load(open(osp.join(shapes_root, 'annotations', 'instances_val.json')))
    cat_index = {c['id']: i for i, c in enumerate(sorted(coco['categories'],
                                                         key=lambda c: c['id']))}
    results, expected = [], np.zeros((5, 5), np.int64)
    for k, img in enumerate(coco['images']):
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']
                and not a.get('iscrowd', 0)]
        gt = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
               a['bbox'][1] + a['bbox'][3]] for a in anns]
        gl = [cat_index[a['category_id']] for a in anns]
        boxes, labels, scores = [list(b) for b in gt], list(gl), [0.9] * len(gt)
        labels[0] = (labels[0] + 1) % 4
        boxes[-1] = [v + 40 for v in boxes[-1]]
        boxes += [[0, 0, 3, 3], gt[1]]
        labels += [k % 4, gl[1]]
        scores += [0.5, 0.2]
        results.append(dict(img_id=img['id'], img_path=img['file_name'], pred_instances=dict(
            bboxes=torch.tensor(boxes), labels=torch.tensor(labels),
            scores=torch.tensor(scores))))
        expected += slow_detection_matrix(gt, gl, boxes, labels, scores, 4, 0.3, 0.5)
    pkl = tmp_path / 'det.pkl'
    pkl.write_bytes(pickle.dumps(results))
    matrix, classes, _ = tool_cm.main([cfg, str(pkl), '--out', str(tmp_path / 'det.png')])
    assert classes == ['circle', 'square', 'triangle', 'star', 'background']
    assert np.array_equal(matrix, expected)
    assert matrix[4].sum() >= 4 and matrix[:4, 4].sum() >= 4  # background row and column
    assert (tmp_path / 'det.png').stat().st_size > 1000
    with pytest.raises(ValueError, match='the .pkl of tools/test.py --out'):
        tool_cm.main([cfg, str(tmp_path)])
