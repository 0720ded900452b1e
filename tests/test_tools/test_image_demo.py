"""demo/image_demo.py on checkpoints trained (2 iterations) on the shapes data:
the demo RetinaNet with GC blocks (mmdet) and a small FCN with a GCNL head (mmseg)."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tools_helpers import (REPO, TRAIN, shapes_detector_config, shapes_segmentor_config,
                           write_config)



def load_script(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def demo():
    return load_script(osp.join(REPO, 'demo', 'image_demo.py'), 'mmctx_image_demo')


@pytest.fixture(scope='module')
def trained(tmp_path_factory, shapes_root):
    """(det config, det checkpoint, seg config, seg checkpoint, image, tmp dir)."""
    tmp = tmp_path_factory.mktemp('demo')
    det = write_config(tmp, shapes_detector_config(shapes_root, iters=2), 'det.py')
    seg = write_config(tmp, shapes_segmentor_config(
        shapes_root, head='GCNLHead', extra='num_heads=2, reduction=2,'), 'seg.py')
    train = load_script(TRAIN, 'mmctx_tool_train')  # in this process: no second start-up
    for cfg, work in ((det, 'det_work'), (seg, 'seg_work')):
        train.main([cfg, '--work-dir', str(tmp / work)])
    image = osp.join(shapes_root, 'images', 'val', sorted(
        os.listdir(osp.join(shapes_root, 'images', 'val')))[0])
    return (det, str(tmp / 'det_work' / 'iter_2.pth'), seg,
            str(tmp / 'seg_work' / 'iter_2.pth'), image, tmp)


def changed_fraction(picture, image):
    return float((np.abs(picture.astype(int) - image).max(axis=2) > 0).mean())


def test_detection_demo_draws_the_boxes(demo, trained, tmp_path):
    det, ckpt, _, _, image_path, _ = trained
    image = cv2.imread(image_path)
    written = demo.main([image_path, det, '--weights', ckpt, '--out-dir', str(tmp_path / 'a'),
                         '--score-thr', '0'])
    assert written == [str(tmp_path / 'a' / (osp.splitext(osp.basename(image_path))[0]
                                             + '.png'))]
    picture = cv2.imread(written[0])
    assert picture.shape == image.shape
    assert changed_fraction(picture, image) > 0.01  # boxes (100 of them at threshold 0)
    # no box passes a threshold above 1: the picture is the input, so the
    # change above is the drawn prediction
    written = demo.main([image_path, det, '--weights', ckpt, '--out-dir', str(tmp_path / 'b'),
                         '--score-thr', '1.01'])
    assert np.array_equal(cv2.imread(written[0]), image)


def test_segmentation_demo_draws_the_label_map(demo, trained, tmp_path):
    _, _, seg, ckpt, image_path, _ = trained
    image = cv2.imread(image_path)
    written = demo.main([image_path, seg, '--weights', ckpt, '--out-dir', str(tmp_path)])
    picture = cv2.imread(written[0])
    assert picture.shape == image.shape
    assert changed_fraction(picture, image) > 0.5  # every pixel gets a label colour


@pytest.mark.parametrize('task', ['det', 'seg'])
def test_show_attention_writes_one_map_per_block(demo, trained, tmp_path, task):
    det, det_ckpt, seg, seg_ckpt, image_path, _ = trained
    cfg, ckpt = (det, det_ckpt) if task == 'det' else (seg, seg_ckpt)
    image = cv2.imread(image_path)
    written = demo.main([image_path, cfg, '--weights', ckpt, '--out-dir', str(tmp_path),
                         '--show-attention', '30,70'])
    maps = written[1:]
    # GC after conv3 of every bottleneck of c3-c5 (4 + 6 + 3); one GCNL block in the head
    expected = {'det': 13, 'seg': 1}[task]
    assert len(maps) == expected
    assert len(os.listdir(osp.dirname(maps[0]))) == expected
    if task == 'seg':
        assert osp.basename(maps[0]) == 'decode_head.context_block.png'
    for path in maps:
        picture = cv2.imread(path)
        assert picture.shape == image.shape
        assert (picture[70, 30] == 255).all()  # the query is marked by a white dot
        assert changed_fraction(picture, image) > 0.5  # the map is drawn over the image


def test_bad_inputs_are_named(demo, trained, tmp_path):
    det, ckpt, _, _, image_path, tmp = trained
    missing = str(tmp_path / 'nope.png')
    with pytest.raises(FileNotFoundError, match='image not found: .*nope.png'):
        demo.main([missing, det, '--weights', ckpt])
    with pytest.raises(FileNotFoundError, match='checkpoint .*missing.pth'):
        demo.main([image_path, det, '--weights', str(tmp_path / 'missing.pth')])
    with pytest.raises(ValueError, match=r'point \(128, 5\) lies outside the 128x128 image'):
        demo.main([image_path, det, '--weights', ckpt, '--show-attention', '128,5'])
    plain = write_config(tmp_path, shapes_segmentor_config(str(tmp) + '/', head='FCNHead'), 'fcn.py')
    with pytest.raises(ValueError, match='fcn.py has no mmctx attention block'):
        demo.main([image_path, plain, '--show-attention', '5,5',
                   '--out-dir', str(tmp_path)])
    assert not (tmp_path / (osp.splitext(osp.basename(image_path))[0] + '.png')).exists()



def test_a_malformed_point_is_a_usage_error(demo, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.parse_args(['a.png', 'cfg.py', '--show-attention', '5;5'])
    assert exit_info.value.code == 2
    assert 'a point is "x,y" in pixels, got \'5;5\'' in capsys.readouterr().err


def test_without_weights_the_config_names_the_classes(demo, trained):
    """Not mmdet's COCO or mmseg's Cityscapes names: the config's test set's."""
    from mmengine.config import Config
    det, _, seg, _, _, _ = trained
    for cfg, scope, classes in (
            (det, 'mmdet', ('circle', 'square', 'triangle', 'star')),
            (seg, 'mmseg', ('circle', 'square', 'triangle', 'star', 'wall', 'floor'))):
        with pytest.warns(UserWarning, match='random weights'):
            inferencer = demo.build_inferencer(Config.fromfile(cfg), None, 'cpu', scope)
        assert tuple(inferencer.model.dataset_meta['classes']) == classes
        assert len(inferencer.model.dataset_meta['palette']) == len(classes)
