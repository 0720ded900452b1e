"""demo/image_demo.py on checkpoints trained (2 iterations) on the shapes data:
the demo RetinaNet with GC blocks (mmdet) and a small FCN with a GCNL head (mmseg)."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from tools_helpers import REPO, TRAIN, write_config

DEMO_CFG = osp.join(REPO, 'configs', 'demo', 'retinanet_r50w16-gcb_fpn64_1xb4-1200it_shapes-128.py')
SEMANTIC = osp.join(REPO, 'configs', '_base_', 'datasets', 'shapes_semantic.py')

DET = '''
_base_ = {demo!r}
data_root = {root!r}
model = dict(test_cfg=dict(score_thr=0.0))  # an untrained detector scores low
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=2))
'''

# A CPU-sized FCN (ResNet-18, 16 channels); HEAD is GCNLHead (one GCNL block,
# Woo et al., Global Context and Geometric Priors for Effective Non-Local
# Self-Attention) or a plain FCNHead (no attention block).
SEG = '''
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', {semantic!r},
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
data_root = {root!r}
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True, type={head!r}, in_channels=128, in_index=3, channels=16,
        num_classes=6, norm_cfg=norm_cfg, align_corners=False, {extra}
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2))
'''


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
    det = write_config(tmp, DET.format(demo=DEMO_CFG, root=shapes_root), 'det.py')
    seg = write_config(tmp, SEG.format(semantic=SEMANTIC, root=shapes_root, head='GCNLHead',
                                       extra='num_heads=2, reduction=2,'), 'seg.py')
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
        assert osp.basename(maps[0]) == 'decode_head.gcnl_block.png'
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
    plain = write_config(tmp_path, SEG.format(semantic=SEMANTIC, root=str(tmp) + '/',
                                              head='FCNHead', extra=''), 'fcn.py')
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
