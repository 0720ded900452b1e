"""The shapes data set bases load in mmdet / mmseg with the right labels."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASES = osp.join(REPO, 'configs', '_base_', 'datasets')


def build(name, split, shapes_root):
    cfg = Config.fromfile(osp.join(BASES, f'shapes_{name}.py'))
    dataset = cfg[f'{split}_dataloader'].dataset
    dataset.data_root = shapes_root
    if name == 'semantic':
        init_default_scope('mmseg')
        from mmseg.registry import DATASETS
    else:
        init_default_scope('mmdet')
        from mmdet.registry import DATASETS
    return cfg, DATASETS.build(dataset)


@pytest.mark.parametrize('name', ['detection', 'instance'])
def test_coco_bases(shapes_root, name):
    _, ds = build(name, 'train', shapes_root)
    assert ds.metainfo['classes'] == ('circle', 'square', 'triangle', 'star')
    assert len(ds) == 8
    sample = ds[0]['data_samples']
    labels = sample.gt_instances.labels.numpy()
    assert len(labels) > 0 and labels.max() < 4
    if name == 'instance':
        masks = sample.gt_instances.masks.to_ndarray()
        boxes = sample.gt_instances.bboxes.tensor.numpy()
        assert masks.shape[0] == len(labels)
        for m, b in zip(masks, boxes):  # each mask lies inside its box
            ys, xs = np.nonzero(m)
            assert xs.min() >= b[0] - 1 and xs.max() <= b[2] + 1
            assert ys.min() >= b[1] - 1 and ys.max() <= b[3] + 1


def test_panoptic_base(shapes_root):
    cfg, ds = build('panoptic', 'val', shapes_root)
    assert ds.metainfo['stuff_classes'] == ('wall', 'floor')
    sample = ds[0]['data_samples']
    sem = sample.gt_sem_seg.sem_seg.numpy()[0]
    # things 0-3, stuff 4-5 in mmdet's contiguous labels; every pixel labelled
    assert set(np.unique(sem).tolist()) <= set(range(6))
    assert {4, 5} & set(np.unique(sem).tolist())
    assert len(sample.gt_instances.labels) > 0
    assert cfg.val_evaluator.type == 'CocoPanopticMetric'
    from mmdet.evaluation.metrics.coco_panoptic_metric import (  # noqa: F401
        pq_compute_single_core)


def test_semantic_base(shapes_root):
    _, ds = build('semantic', 'val', shapes_root)
    assert ds.metainfo['classes'][-2:] == ('wall', 'floor')
    assert len(ds) == 4
    seg = ds[0]['data_samples'].gt_sem_seg.data.numpy()
    assert set(np.unique(seg).tolist()) <= set(range(6))
