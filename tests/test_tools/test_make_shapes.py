"""The synthetic shapes data set: determinism and validity of every format."""
import filecmp
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from make_shapes import (CATEGORY_IDS, CLASSES, STUFF_CLASSES, THING_CLASSES,
                         main, make_shapes)


def _files(root):
    out = []
    for d, _, names in os.walk(root):
        out += [osp.relpath(osp.join(d, n), root) for n in names]
    return sorted(out)


def _read_rgb_ids(path):
    bgr = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.int64)
    return bgr[..., 2] + 256 * bgr[..., 1] + 256 * 256 * bgr[..., 0]


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = make_shapes(str(tmp_path / 'a'), 3, 2, 64, seed=7)
    b = make_shapes(str(tmp_path / 'b'), 3, 2, 64, seed=7)
    c = make_shapes(str(tmp_path / 'c'), 3, 2, 64, seed=8)
    files = _files(a)
    assert files == _files(b) == _files(c)
    assert len(files) == 1 + 4 + 3 * (3 + 2)  # meta, 4 jsons, 3 pngs/scene
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert mismatch == [] and errors == []
    _, mismatch, _ = filecmp.cmpfiles(a, c, files, shallow=False)
    assert any(f.startswith('images') for f in mismatch)
    # a scene does not depend on how many scenes come before or after it
    d = make_shapes(str(tmp_path / 'd'), 5, 1, 64, seed=7)
    for i in (1, 2, 3):
        name = f'images/train/{i:06d}.png'
        assert filecmp.cmp(osp.join(a, name), osp.join(d, name), shallow=False)


def test_rerun_is_skipped_unless_arguments_change(tmp_path):
    root = str(tmp_path / 's')
    main(['--out', root, '--num-train', '2', '--num-val', '1',
          '--img-size', '64', '--seed', '3'])
    probe = osp.join(root, 'images', 'train', '000001.png')
    os.remove(probe)
    make_shapes(root, 2, 1, 64, seed=3)  # same arguments: nothing rewritten
    assert not osp.exists(probe)
    make_shapes(root, 2, 1, 64, seed=3, force=True)
    assert osp.exists(probe)
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['seed'] == 3 and meta['classes'] == list(CLASSES)


@pytest.mark.parametrize('kwargs,word', [
    (dict(num_train=1, num_val=1, img_size=16), 'img_size'),
    (dict(num_train=0, num_val=1, img_size=64), 'num_train'),
])
def test_bad_arguments(tmp_path, kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_shapes(str(tmp_path), seed=0, **kwargs)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_instances_match_panoptic_and_semantic(shapes_root, split):
    coco = COCO(osp.join(shapes_root, 'annotations', f'instances_{split}.json'))
    with open(osp.join(shapes_root, 'annotations',
                       f'panoptic_{split}.json')) as f:
        panoptic = json.load(f)
    pan_cats = {c['id']: c for c in panoptic['categories']}
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == \
        list(THING_CLASSES)
    assert sorted(c['name'] for c in pan_cats.values() if not c['isthing']) \
        == sorted(STUFF_CLASSES)
    assert len(coco.getImgIds()) == len(panoptic['annotations']) > 0
    label_of_cat = {CATEGORY_IDS[n]: i for i, n in enumerate(CLASSES)}

    for pan in panoptic['annotations']:
        img_info = coco.loadImgs(pan['image_id'])[0]
        h, w = img_info['height'], img_info['width']
        img = cv2.imread(osp.join(shapes_root, 'images', split,
                                  img_info['file_name']))
        assert img.shape == (h, w, 3)
        ids = _read_rgb_ids(osp.join(shapes_root, 'annotations',
                                     f'panoptic_{split}', pan['file_name']))
        semantic = cv2.imread(osp.join(shapes_root, 'semantic', split,
                                       pan['file_name']), cv2.IMREAD_UNCHANGED)
        assert semantic.dtype == np.uint8 and semantic.shape == (h, w)
        # every pixel belongs to exactly one listed segment
        seg_ids = {s['id'] for s in pan['segments_info']}
        assert set(np.unique(ids).tolist()) == seg_ids
        expected_semantic = np.full((h, w), 255, np.int64)
        for s in pan['segments_info']:
            m = ids == s['id']
            assert s['area'] == int(m.sum())
            assert s['category_id'] in pan_cats
            expected_semantic[m] = label_of_cat[s['category_id']]
        np.testing.assert_array_equal(semantic, expected_semantic)

        # each thing segment is one COCO instance whose polygon covers it
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[pan['image_id']]))
        things = [s for s in pan['segments_info']
                  if pan_cats[s['category_id']]['isthing']]
        assert len(anns) == len(things)
        for ann in anns:
            assert ann['iscrowd'] == 0 and len(ann['segmentation']) >= 1
            poly_mask = coco.annToMask(ann).astype(bool)
            best = max(things, key=lambda s: ((ids == s['id']) & poly_mask).sum())
            seg_mask = ids == best['id']
            assert best['category_id'] == ann['category_id']
            iou = (seg_mask & poly_mask).sum() / (seg_mask | poly_mask).sum()
            assert iou == 1.0, iou  # polygons follow pixel edges exactly
            ys, xs = np.nonzero(seg_mask)
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(),
                                   ys.max() + 1 - ys.min()]
            assert ann['area'] == seg_mask.sum()
            # pycocotools' own RLE of the polygon agrees with annToMask
            rle = mask_utils.frPyObjects(ann['segmentation'], h, w)
            assert mask_utils.area(mask_utils.merge(rle)) == poly_mask.sum()


def test_scenes_are_not_trivial(shapes_root):
    coco = COCO(osp.join(shapes_root, 'annotations', 'instances_train.json'))
    areas = np.array([a['area'] for a in coco.dataset['annotations']])
    # objects of several sizes, small ones included (COCO "small": < 32^2)
    assert (areas < 16 ** 2).any() and (areas > 24 ** 2).any()
    assert len({a['category_id'] for a in coco.dataset['annotations']}) == 4
    for img_id in coco.getImgIds():
        cats = [a['category_id'] for a in
                coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))]
        # one class is repeated in every scene
        assert max(np.bincount(cats)) >= 2
        img = cv2.imread(osp.join(shapes_root, 'images', 'train',
                                  coco.loadImgs(img_id)[0]['file_name']))
        # textured, noisy background: no flat colour regions
        background = img[cv2.imread(
            osp.join(shapes_root, 'semantic', 'train',
                     coco.loadImgs(img_id)[0]['file_name']),
            cv2.IMREAD_UNCHANGED) >= len(THING_CLASSES)]
        assert background.std(0).min() > 3


@pytest.mark.parametrize('pattern', [
    ['#'],
    ['##.', '.##', '..#'],  # pixels touching only at corners
    ['#.#', '.#.', '#.#'],
    ['###.', '#...', '###.', '..##'],
])
def test_polygons_rasterize_to_the_exact_mask(pattern):
    from make_shapes import mask_to_polygons
    small = np.array([[c == '#' for c in row] for row in pattern], np.uint8)
    mask = np.zeros((8, 9), np.uint8)
    mask[2:2 + small.shape[0], 3:3 + small.shape[1]] = small
    polys = mask_to_polygons(mask)
    rle = mask_utils.merge(mask_utils.frPyObjects(polys, 8, 9))
    np.testing.assert_array_equal(mask_utils.decode(rle), mask)


def test_rerun_clears_the_splits_it_writes(tmp_path):
    """A smaller re-run leaves no file of the earlier, larger one behind."""
    root = str(tmp_path / 's')
    make_shapes(root, 4, 3, 64, seed=1)
    stray = osp.join(root, 'semantic', 'train', 'extra', 'old.png')
    os.makedirs(osp.dirname(stray))
    open(stray, 'wb').close()
    first = _files(root)
    make_shapes(root, 2, 1, 64, seed=2)
    files = _files(root)
    assert len(first) == 1 + 4 + 3 * (4 + 3) + 1
    assert len(files) == 1 + 4 + 3 * (2 + 1)
    for split, n in (('train', 2), ('val', 1)):
        names = [f'{i:06d}.png' for i in range(1, n + 1)]
        for d in ('images', 'semantic', 'annotations'):
            sub = (osp.join(d, f'panoptic_{split}') if d == 'annotations'
                   else osp.join(d, split))
            assert sorted(os.listdir(osp.join(root, sub))) == names, sub
        with open(osp.join(root, 'annotations',
                           f'instances_{split}.json')) as f:
            assert len(json.load(f)['images']) == n
    # the new scenes are those of seed 2, not left-overs of seed 1
    fresh = make_shapes(str(tmp_path / 'fresh'), 2, 1, 64, seed=2)
    _, mismatch, errors = filecmp.cmpfiles(root, fresh, files, shallow=False)
    assert mismatch == [] and errors == []
