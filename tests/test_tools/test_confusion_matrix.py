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
    det = write_config(tmp_path, "_base_ = %r\ndefault_scope = 'mmdet'\n" % osp.join(
        REPO, 'configs', '_base_', 'datasets', 'shapes_detection.py'), 'det.py')
    with pytest.raises(ValueError, match="default_scope is 'mmdet'"):
        tool_cm.main([det, pred_dir])
