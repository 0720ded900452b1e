"""mmctx.utils.dataset_check, tools/misc/check_dataset.py: loud data errors.

Each test breaks a copy of a tiny synthetic shapes data set in one way and
checks that the error names the problem and the file; the counts of invalid
annotations are compared with what mmdet's own ``CocoDataset`` keeps, and the
label values with what mmseg's own ``LoadAnnotations`` makes of them.
"""
import importlib.util
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from mmctx.utils import dataset_check as dc
from make_shapes import make_shapes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASES = osp.join(REPO, 'configs', '_base_', 'datasets')
SCOPE = dict(detection='mmdet', instance='mmdet', panoptic='mmdet',
             semantic='mmseg')


def _load_tool(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def pristine(tmp_path_factory):
    """3 train / 2 val scenes of 64 px, generated once per module."""
    root = str(tmp_path_factory.mktemp('shapes_check'))
    make_shapes(root, num_train=3, num_val=2, img_size=64, seed=1)
    return root


@pytest.fixture
def root(pristine, tmp_path):
    """A copy of the pristine data set that a test may break."""
    dst = str(tmp_path / 'shapes')
    shutil.copytree(pristine, dst)
    return dst + '/'


def _cfg(kind, root):
    """The shapes data set base of ``kind`` pointed at ``root``."""
    cfg = Config.fromfile(osp.join(BASES, f'shapes_{kind}.py'))
    cfg.default_scope = SCOPE[kind]
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = root
    return cfg


def _json(root, name):
    with open(osp.join(root, 'annotations', name)) as f:
        return json.load(f)


def _dump(root, name, data):
    with open(osp.join(root, 'annotations', name), 'w') as f:
        json.dump(data, f)


def _check(cfg, **kwargs):
    kwargs.setdefault('progress', False)
    kwargs.setdefault('log', lambda text: None)
    return dc.check_config_datasets(cfg, **kwargs)


@pytest.mark.parametrize('kind', ['detection', 'instance', 'panoptic',
                                  'semantic'])
def test_clean_data_passes_with_exact_counts(root, kind):
    reports = _check(_cfg(kind, root), mode='full')
    # val and test share one data set: checked once
    assert [r.split for r in reports] == ['train', 'val/test']
    for report, split, n in zip(reports, ('train', 'val'), (3, 2)):
        assert report.errors == [] and not report.invalid, report.summary()
        assert report.num_images == n
        if kind in ('detection', 'instance'):
            anns = _json(root, f'instances_{split}.json')['annotations']
            assert report.num_annotations == len(anns)
        elif kind == 'panoptic':
            anns = _json(root, f'panoptic_{split}.json')['annotations']
            assert report.num_annotations == sum(
                len(a['segments_info']) for a in anns)
        else:
            assert report.num_annotations == n  # one label map per image


def test_misspelt_class_is_named_with_its_close_match(root):
    cfg = _cfg('detection', root)
    cfg.train_dataloader.dataset.metainfo.classes = (
        'cirle', 'square', 'triangle', 'star')
    with pytest.raises(dc.DatasetCheckError) as info:
        _check(cfg, splits=['train'])
    msg = str(info.value)
    assert "class 'cirle'" in msg and "did you mean 'circle'" in msg
    assert osp.join(root, 'annotations/instances_train.json') in msg
    # the circles become 'category not in classes' (unused, not invalid)
    reports = _check(cfg, splits=['train'], raise_errors=False)
    circles = sum(a['category_id'] == 1 for a in
                  _json(root, 'instances_train.json')['annotations'])
    assert reports[0].unused[dc.NOT_IN_CLASSES] == circles > 0


def test_all_classes_wrong_says_the_train_set_is_empty(root):
    cfg = _cfg('detection', root)
    cfg.train_dataloader.dataset.metainfo.classes = ('a', 'b')
    with pytest.raises(dc.DatasetCheckError,
                       match=r'nothing to train on in .*instances_train.json: '
                       r'3 of 3 images have no valid annotation of the '
                       r'classes, .* keeps 0 images \(mmengine would fail'):
        _check(cfg, splits=['train'])


def test_train_set_of_invalid_boxes_only_is_named(root):
    """mmdet keeps images whose boxes are all invalid: 0 instances each."""
    data = _json(root, 'instances_train.json')
    for ann in data['annotations']:
        ann['bbox'][2] = 0.0
    _dump(root, 'instances_train.json', data)
    cfg = _cfg('detection', root)
    report = _check(cfg, splits=['train'], raise_errors=False)[0]
    from mmdet.datasets import CocoDataset
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.pop('type')
    ds_cfg.update(pipeline=[], serialize_data=False)
    dataset = CocoDataset(**ds_cfg)  # reference: mmdet's own filter
    assert report.num_kept_images == len(dataset) == 3
    assert all(not d['instances'] for d in dataset.data_list)
    assert report.invalid[dc.ZERO_SIZE] == len(data['annotations'])
    assert any('nothing to train on' in e and 'keeps 3 images' in e
               for e in report.errors), report.errors


def test_train_json_without_annotations_and_val_json_without_images(root):
    train = _json(root, 'instances_train.json')
    train['annotations'] = []
    _dump(root, 'instances_train.json', train)
    val = _json(root, 'instances_val.json')
    val['images'] = []
    _dump(root, 'instances_val.json', val)
    with pytest.raises(dc.DatasetCheckError) as info:
        _check(_cfg('detection', root), splits=['train', 'val'])
    msg = str(info.value)
    assert 'instances_train.json has no annotations' in msg
    assert 'instances_val.json has no images' in msg


def test_invalid_annotations_counted_per_reason_as_mmdet_drops_them(root):
    data = _json(root, 'instances_train.json')
    anns = data['annotations']
    n = len(anns)
    assert n >= 8
    anns[0]['bbox'][2] = -3.0                     # negative width
    anns[1]['bbox'][3] = 0.5                      # height < 1 px
    anns[2]['area'] = 0                           # zero area
    anns[3]['category_id'] = 99                   # unknown category
    anns[4]['bbox'][:2] = [500.0, 500.0]          # outside the 64 px image
    anns[5]['image_id'] = 999                     # unknown image
    anns[6]['bbox'][2] = 80.0                     # past the border (kept)
    anns[7]['segmentation'] = [[1.0, 1.0, 5.0, 5.0]]  # 2-point polygon
    _dump(root, 'instances_train.json', data)
    cfg = _cfg('instance', root)
    cfg.train_dataloader.dataset.filter_cfg = None
    with pytest.raises(dc.DatasetCheckError,
                       match=rf'8 of {n} annotations .* more than '
                       'max_invalid_ratio=0.01'):
        _check(cfg, splits=['train'])
    report = _check(cfg, splits=['train'], max_invalid_ratio=0.5)[0]
    assert report.errors == []
    assert dict(report.invalid) == {
        dc.NEGATIVE_SIZE: 1, dc.ZERO_SIZE: 1, dc.ZERO_AREA: 1,
        dc.UNKNOWN_CATEGORY: 1, dc.OUTSIDE: 1, dc.UNKNOWN_IMAGE: 1,
        dc.PAST_BORDER: 1, dc.BAD_POLYGON: 1}
    assert 'annotation id 4 of' in report.examples[dc.UNKNOWN_CATEGORY][0]
    assert any('8 of' in w for w in report.warnings)

    # reference: the instances mmdet's CocoDataset keeps
    from mmdet.datasets import CocoDataset
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.pop('type')
    ds_cfg.update(pipeline=[], serialize_data=False)
    kept = sum(len(d['instances']) for d in CocoDataset(**ds_cfg).data_list)
    dropped = sum(report.invalid.values()) - report.invalid[dc.PAST_BORDER] \
        - report.invalid[dc.BAD_POLYGON]
    assert kept == n - dropped == n - 6


def test_missing_empty_truncated_and_resized_images_are_named(root):
    img_dir = osp.join(root, 'images', 'train')
    os.remove(osp.join(img_dir, '000001.png'))
    open(osp.join(img_dir, '000002.png'), 'wb').close()  # 0 bytes
    with open(osp.join(img_dir, '000003.png'), 'rb') as f:
        head = f.read(200)  # header intact, pixel data cut
    with open(osp.join(img_dir, '000003.png'), 'wb') as f:
        f.write(head)
    val_img = osp.join(root, 'images', 'val', '000001.png')
    cv2.imwrite(val_img, np.zeros((32, 48, 3), np.uint8))
    cfg = _cfg('detection', root)

    with pytest.raises(dc.DatasetCheckError) as info:
        _check(cfg, mode='fast')
    fast = str(info.value)
    assert f'1 images are missing: {img_dir}/000001.png' in fast
    assert f'{img_dir}/000002.png: empty file (0 bytes)' in fast
    assert f'{val_img} is (32, 48), json (64, 64)' in fast
    # fast mode reads headers only: the truncated image passes it ...
    assert '000003.png' not in fast
    with pytest.raises(dc.DatasetCheckError) as info:
        _check(cfg, mode='full')
    # ... and the full decode catches it, naming the file
    assert f'{img_dir}/000003.png: cannot be decoded' in str(info.value)


def _seg_value(root, split, name, value, where=(0, 0)):
    path = osp.join(root, 'semantic', split, name)
    seg = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    seg[where] = value
    cv2.imwrite(path, seg)
    return path


def test_semantic_labels_out_of_range_are_named_with_their_values(root):
    bad = _seg_value(root, 'train', '000002.png', 9)
    _seg_value(root, 'train', '000001.png', 255)  # ignore_index: fine
    cfg = _cfg('semantic', root)
    with pytest.raises(dc.DatasetCheckError) as info:
        _check(cfg, splits=['train'], mode='fast')
    msg = str(info.value)
    assert ('1 label maps have values outside [0, 6) and != '
            f'ignore_index=255: {bad}: values [9]') in msg
    # with reduce_zero_label 9 is label 8; 0 becomes ignored
    cfg.train_dataloader.dataset.reduce_zero_label = True
    with pytest.raises(dc.DatasetCheckError,
                       match=r'after reduce_zero_label\): .*values \['):
        _check(cfg, splits=['train'], mode='fast')


def test_semantic_missing_maps_sizes_and_stale_maps(root):
    sem_dir = osp.join(root, 'semantic', 'train')
    os.remove(osp.join(sem_dir, '000001.png'))
    cv2.imwrite(osp.join(sem_dir, '000002.png'), np.zeros((8, 8), np.uint8))
    cv2.imwrite(osp.join(sem_dir, '000099.png'), np.zeros((64, 64), np.uint8))
    cv2.imwrite(osp.join(sem_dir, '000003.png'),
                np.zeros((64, 64, 3), np.uint8))
    reports = _check(_cfg('semantic', root), splits=['train'],
                     raise_errors=False)
    errors = '\n'.join(reports[0].errors)
    assert f'1 label maps are missing: {sem_dir}/000001.png' in errors
    assert f'{sem_dir}/000002.png is (8, 8), image (64, 64)' in errors
    assert f'{sem_dir}/000003.png: shape (64, 64, 3)' in errors
    assert any(f'{sem_dir}/000099.png' in w and 'no image' in w
               for w in reports[0].warnings)


@pytest.mark.parametrize('reduce_zero_label', [False, True])
@pytest.mark.parametrize('label_map', [None, {0: 2, 1: 255, 2: 0, 3: 1}])
def test_label_values_match_mmseg_load_annotations(tmp_path, label_map,
                                                   reduce_zero_label):
    """Reference: mmseg's LoadAnnotations on a map holding every value."""
    from mmseg.datasets.transforms import LoadAnnotations
    raw = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = str(tmp_path / 'map.png')
    cv2.imwrite(path, raw)
    results = LoadAnnotations(reduce_zero_label=reduce_zero_label)(dict(
        seg_map_path=path, reduce_zero_label=reduce_zero_label,
        label_map=label_map, seg_fields=[]))
    ours = dc.seg_label_values(raw.ravel(), reduce_zero_label, label_map)
    np.testing.assert_array_equal(ours.reshape(16, 16), results['gt_seg_map'])


def test_panoptic_maps_and_segments(root):
    pan_dir = osp.join(root, 'annotations', 'panoptic_train')
    os.remove(osp.join(pan_dir, '000001.png'))
    data = _json(root, 'panoptic_train.json')
    data['annotations'][1]['segments_info'][0]['category_id'] = 42
    dropped = data['annotations'][2]['segments_info'].pop(0)
    _dump(root, 'panoptic_train.json', data)
    reports = _check(_cfg('panoptic', root), splits=['train'], mode='full',
                     raise_errors=False)
    errors = '\n'.join(reports[0].errors)
    assert f'1 panoptic maps are missing: {pan_dir}/000001.png' in errors
    assert 'category_id 42' in errors and 'KeyError' in errors
    assert (f'{pan_dir}/000003.png: ids [{dropped["id"]}]' in errors
            and 'segments_info does not list' in errors)


def test_wrappers_are_unwrapped_and_unknown_types_reported(root):
    cfg = _cfg('detection', root)
    inner = cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=2,
                                        dataset=inner)
    cfg.val_dataloader.dataset = dict(type='ConcatDataset',
                                      datasets=[inner, dict(type='Foo')])
    cfg.test_dataloader = None
    reports = _check(cfg)
    assert [(r.split, r.checked) for r in reports] == [
        ('train/val', True), ('val', False)]
    assert 'unknown data set type' in reports[1].summary()


def test_before_training_defaults_skip_and_options(root):
    cfg = _cfg('semantic', root)
    cfg.val_cfg = dict(type='ValLoop')
    reports = dc.check_before_training(cfg)
    assert [r.split for r in reports] == ['train', 'val']  # not test
    cfg.train_dataloader.dataset.data_root = root + 'nowhere/'
    with pytest.raises(dc.DatasetCheckError,
                       match=r'nowhere.*does not exist(.|\n)*'
                       r'data_check.skip=True'):
        dc.check_before_training(cfg)
    cfg.data_check = dict(skip=True)
    assert dc.check_before_training(cfg) is None
    cfg.data_check = dict(skp=True)
    with pytest.raises(ValueError, match=r"unknown keys \['skp'\]"):
        dc.check_before_training(cfg)
    cfg.data_check = dict(mode='slow')
    with pytest.raises(ValueError, match="mode must be one of"):
        dc.check_before_training(cfg)


def test_train_py_stops_before_building_the_runner(root, tmp_path,
                                                   monkeypatch):
    train = _load_tool(osp.join(REPO, 'tools', 'train.py'), 'mmctx_train')
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        f"_base_ = {osp.join(BASES, 'shapes_detection.py')!r}\n"
        "default_scope = 'mmdet'\n"
        f"train_dataloader = dict(dataset=dict(data_root={root!r}, "
        "metainfo=dict(classes=('circle', 'sqare', 'triangle', 'star'))))\n"
        "model = dict(type='NoSuchDetector')\n")
    built = []

    class Runner:
        def train(self):
            built.append(self)

    monkeypatch.setattr(train, 'build_runner', lambda cfg: Runner())
    with pytest.raises(dc.DatasetCheckError, match="class 'sqare'"):
        train.main([str(cfg_file), '--work-dir', str(tmp_path / 'w')])
    assert built == []
    train.main([str(cfg_file), '--work-dir', str(tmp_path / 'w'),
                '--cfg-options', 'data_check.skip=True'])
    assert len(built) == 1


def test_check_dataset_tool(root, capsys):
    tool = _load_tool(osp.join(REPO, 'tools', 'misc', 'check_dataset.py'),
                      'mmctx_check_dataset')
    cfg_file = osp.join(root, 'cfg.py')
    with open(cfg_file, 'w') as f:
        f.write(f"_base_ = {osp.join(BASES, 'shapes_semantic.py')!r}\n"
                "default_scope = 'mmseg'\n"
                f"train_dataloader = dict(dataset=dict(data_root={root!r}))\n"
                f"val_dataloader = dict(dataset=dict(data_root={root!r}))\n"
                "test_dataloader = val_dataloader\n")
    assert tool.main([cfg_file, '--split', 'all']) == 0
    out = capsys.readouterr().out
    assert 'data check passed: 2 data sets (train, val/test), mode full' in out
    bad = _seg_value(root, 'val', '000002.png', 7)
    assert tool.main([cfg_file, '--split', 'train', '--no-progress']) == 0
    assert tool.main([cfg_file, '--split', 'val', '--no-progress']) == 1
    assert f'{bad}: values [7]' in capsys.readouterr().err
    with pytest.raises(ValueError, match="did you mean 'data_root'"):
        tool.main([cfg_file, '--cfg-options', 'data_rot=x'])
