"""tools/analysis_tools/browse_dataset.py on the generated shapes data."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tools_helpers import REPO, run_tool, write_config

DATASETS = osp.join(REPO, 'configs', '_base_', 'datasets')

# the shapes configs with the library's runtime (its visualizer); FIXED=True
# replaces the random training pipeline by a deterministic one, so that a
# picture can be compared with its image file pixel by pixel
DET = '''
_base_ = [{base!r}, 'mmdet::_base_/default_runtime.py']
data_root = {root!r}
train_dataloader = dict(dataset=dict(data_root=data_root))
if {fixed}:
    train_dataloader['dataset']['pipeline'] = [
        dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs')]
'''
SEG = '''
_base_ = [{base!r}, 'mmseg::_base_/default_runtime.py']
data_root = {root!r}
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=[
    dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]))
'''


@pytest.fixture
def browse(tool):
    return tool('analysis_tools/browse_dataset.py')


def changed(picture, image):
    return np.abs(picture.astype(int) - image).max(axis=2) > 0


def test_detection_boxes_are_drawn(browse, tmp_path, shapes_root):
    cfg = write_config(tmp_path, DET.format(base=osp.join(DATASETS, 'shapes_detection.py'),
                                            root=shapes_root, fixed=True))
    out = tmp_path / 'out'
    written = browse.main([cfg, '--output-dir', str(out), '--not-show', '--max', '3'])
    assert len(written) == 3 and sorted(os.listdir(out)) == sorted(
        osp.basename(p) for p in written)
    coco = json.load(open(osp.join(shapes_root, 'annotations', 'instances_train.json')))
    by_name = {img['file_name']: img['id'] for img in coco['images']}
    for path in written:
        name = osp.basename(path)
        image = cv2.imread(osp.join(shapes_root, 'images', 'train', name))
        picture = cv2.imread(path)
        assert picture.shape == image.shape
        diff = changed(picture, image)
        boxes = [a['bbox'] for a in coco['annotations'] if a['image_id'] == by_name[name]]
        assert boxes
        for x, y, w, h in boxes:  # the edges of every ground-truth box are drawn
            edge = diff[int(y):int(y + h) + 1, [int(x), min(int(x + w), 127)]]
            assert edge.mean() > 0.5, (name, (x, y, w, h))
        near = np.zeros_like(diff)
        for x, y, w, h in boxes:  # the box, and its class name written from its top-left corner
            x, y = int(x), int(y)
            near[max(y - 3, 0):y + int(h) + 4, max(x - 3, 0):x + int(w) + 4] = True
            near[max(y - 3, 0):y + 16, max(x - 3, 0):x + 50] = True
        assert not diff[~near].any()  # nothing drawn away from the boxes and their labels


def test_segmentation_label_maps_are_drawn(browse, tmp_path, shapes_root):
    cfg = write_config(tmp_path, SEG.format(base=osp.join(DATASETS, 'shapes_semantic.py'),
                                            root=shapes_root))
    written = browse.main([cfg, '--output-dir', str(tmp_path / 'out'), '--not-show'])
    assert len(written) == 8  # every training image without --max
    for path in written[:2]:
        name = osp.basename(path)
        image = cv2.imread(osp.join(shapes_root, 'images', 'train', name))
        picture = cv2.imread(path)
        assert picture.shape == image.shape
        assert changed(picture, image).mean() > 0.9  # every pixel is labelled


def test_command_line_with_the_random_training_pipeline(tmp_path, shapes_root):
    """The instance config as it is (random flip, masks), run as a user would."""
    cfg = write_config(tmp_path, DET.format(base=osp.join(DATASETS, 'shapes_instance.py'),
                                            root=shapes_root, fixed=False))
    out = tmp_path / 'out'
    _, text = run_tool(osp.join(REPO, 'tools', 'analysis_tools', 'browse_dataset.py'), cfg,
                       '--output-dir', str(out), '--not-show', '--max', '2')
    assert f'2 pictures in {out}' in text
    assert len(os.listdir(out)) == 2
    for name in os.listdir(out):
        image = cv2.imread(osp.join(shapes_root, 'images', 'train', name))
        picture = cv2.imread(str(out / name))
        assert picture.shape == image.shape
        # masks are filled: much more changes than box edges, whichever way it was flipped
        assert min(changed(picture, image).mean(), changed(picture, image[:, ::-1]).mean()) > 0.03


def test_bad_arguments_are_named(browse, tmp_path, shapes_root):
    with pytest.raises(ValueError, match='with --not-show, give --output-dir'):
        browse.main(['cfg.py', '--not-show'])
    with pytest.raises(FileNotFoundError, match='config not found: .*nope.py'):
        browse.main([str(tmp_path / 'nope.py'), '--not-show', '--output-dir', str(tmp_path)])
    with pytest.raises(ValueError, match='--max must be at least 1, got 0'):
        browse.main(['cfg.py', '--max', '0', '--output-dir', str(tmp_path)])
    other = write_config(tmp_path, "default_scope = 'mmpretrain'\n", 'other.py')
    with pytest.raises(ValueError, match="default_scope must be mmdet or mmseg, got 'mmpretrain'"):
        browse.main([other, '--not-show', '--output-dir', str(tmp_path)])
