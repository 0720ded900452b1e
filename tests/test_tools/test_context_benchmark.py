"""The context benchmark: its data, its scores, its premise (the baseline
cannot see the key) and, in miniature, its result (a context head reads a key
the same network without it cannot).
"""
import json
import os.path as osp
import sys
from functools import lru_cache

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmctx.analysis.context_benchmark import (FRAGMENTS, HOUR_GROUPS, KEY_DISTANCE, NO_BOXES,
                                              QUICK_ITERS, QUICK_ROWS, REPO, ROWS, SCENE_SETS,
                                              Row, compose_config, context_map_path,
                                              det_scores, gt_context_flags, headline_rows,
                                              match_context_flags, object_class_confusion,
                                              receptive_radius, render_table, seg_confusion,
                                              seg_scores, shared_runs, slug, summarize,
                                              train_and_score)

sys.path.insert(0, osp.join(REPO, 'tools', 'dataset_converters'))
from make_context_shapes import (CLASSES, KEY_COLOURS, KEY_SIZE, NUM_TWINS,  # noqa: E402
                                 OBJECT_SIZE, make_context_shapes, make_key_scene,
                                 make_twins_scene)

MIN_DISTANCE = KEY_DISTANCE[96]


def _key_box(img):
    """(x0, y0, x1, y1) and class of the one KEY_SIZE square of a key colour."""
    for label, colour in enumerate(KEY_COLOURS):
        near = (np.abs(img.astype(int) - colour).max(-1) < 25)
        ys, xs = np.nonzero(near)
        if len(ys) >= KEY_SIZE * KEY_SIZE // 2:
            return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), label
    raise AssertionError('no key found')


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('size', sorted(KEY_DISTANCE))
def test_every_object_is_far_from_the_key_and_takes_its_class(seed, size):
    distance = KEY_DISTANCE[size]
    rng = np.random.default_rng(seed)
    img, masks, labels, context, (key_box, ) = make_key_scene(rng, size, distance)
    assert 2 <= len(masks) <= 5 and all(context) and len(set(labels)) == 1
    label = labels[0]
    found, found_label = _key_box(img)
    assert found_label == label
    # the key found in the pixels is the key the generator reports (noise may
    # push a border pixel out of the colour tolerance)
    assert np.abs(np.array(found) - np.array(key_box)).max() <= 1
    x0, y0, x1, y1 = key_box
    for m in masks:
        ys, xs = np.nonzero(m)
        # brute force over every pair: Chebyshev distance object pixel -> key pixel
        kx, ky = np.meshgrid(np.arange(x0, x1), np.arange(y0, y1))
        d = np.maximum(np.abs(xs[:, None] - kx.ravel()), np.abs(ys[:, None] - ky.ravel()))
        assert d.min() > distance
    # objects look alike: the key colour is nowhere inside an object
    for m in masks:
        inside = img[m > 0].astype(int)
        assert np.abs(inside - KEY_COLOURS[label]).max(-1).min() > 60


def test_oracle_scenes_put_the_key_next_to_each_object():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    plain, masks, labels, _, _ = make_key_scene(rng_a, 96, MIN_DISTANCE)
    oracle, masks_b, labels_b, _, _ = make_key_scene(rng_b, 96, MIN_DISTANCE, oracle=True)
    assert labels == labels_b and all((a == b).all() for a, b in zip(masks, masks_b))
    colour = np.array(KEY_COLOURS[labels[0]])
    for m in masks:
        ys, xs = np.nonzero(m)
        x0, y0 = xs.min(), ys.min()
        patch = oracle[max(y0 - 6, 0):y0, max(x0 - 6, 0):x0].astype(int)
        assert (np.abs(patch - colour).max(-1) < 25).mean() > 0.8
        assert (np.abs(plain[max(y0 - 6, 0):y0, max(x0 - 6, 0):x0].astype(int) - colour)
                .max(-1) < 25).mean() < 0.2


def test_generator_is_deterministic_and_writes_coco_and_label_maps(tmp_path):
    a = make_context_shapes(str(tmp_path / 'a'), 4, 2, seed=5)
    b = make_context_shapes(str(tmp_path / 'b'), 4, 2, seed=5)
    for split in ('train', 'val'):
        ja = json.load(open(osp.join(a, 'annotations', f'instances_{split}.json')))
        jb = json.load(open(osp.join(b, 'annotations', f'instances_{split}.json')))
        assert ja == jb
        assert [c['name'] for c in ja['categories']] == list(CLASSES)
    import cv2
    sem = cv2.imread(osp.join(a, 'semantic', 'train', '000001.png'), 0)
    coco = json.load(open(osp.join(a, 'annotations', 'instances_train.json')))
    first = [x for x in coco['annotations'] if x['image_id'] == 1]
    labels = set(np.unique(sem)) - {0}
    assert labels == {first[0]['category_id']}  # one class per scene, 1-based in both
    assert sum(x['area'] for x in first) == (sem > 0).sum()
    # every object of a key scene needs the key: its context map is the objects
    ctx = cv2.imread(osp.join(a, 'context', 'train', '000001.png'), cv2.IMREAD_UNCHANGED)
    assert ((ctx > 0) == (sem > 0)).all() and all(x['context'] for x in first)
    assert context_map_path(osp.join(a, 'images', 'train', '000001.png')) == osp.join(
        a, 'context', 'train', '000001.png')


def _fill(mask):
    """The fraction of a mask's bounding box it fills: 1 for a square, ~pi / 4 for a disc."""
    ys, xs = np.nonzero(mask)
    return len(ys) / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1))


@pytest.mark.parametrize('seed', range(6))
def test_every_twin_is_far_from_both_exemplars_and_takes_the_class_of_its_shape(seed):
    img, masks, labels, context, cues = make_twins_scene(np.random.default_rng(seed), 96,
                                                         MIN_DISTANCE)
    assert context[:2] == [False, False] and all(context[2:])
    assert 2 <= len(masks) - 2 <= NUM_TWINS[1]
    exemplars, twins = masks[:2], masks[2:]
    # two classes, each exemplar in its key colour; one a square, one a disc
    assert labels[0] != labels[1]
    for m, label in zip(exemplars, labels):
        mean = img[m > 0].astype(float).mean(0)
        assert np.abs(mean - KEY_COLOURS[label]).max() < 10
    square = [_fill(m) > 0.95 for m in masks]
    assert sorted(square[:2]) == [False, True]
    assert all(_fill(m) < 0.85 for m, sq in zip(masks, square) if not sq)
    # a twin: grey (no key colour), the shape and the class of one exemplar,
    # every pixel farther than MIN_DISTANCE from every exemplar pixel
    assert {square[i] for i in range(2, len(masks))} == {False, True}
    for i in range(2, len(masks)):
        twin = img[masks[i] > 0].astype(int)
        assert np.ptp(twin.mean(0)) < 10  # r, g and b alike
        assert labels[i] == labels[square[:2].index(square[i])]
        ys, xs = np.nonzero(masks[i])
        for ex in exemplars:
            ey, ex_ = np.nonzero(ex)
            d = np.maximum(np.abs(xs[:, None] - ex_), np.abs(ys[:, None] - ey))
            assert d.min() > MIN_DISTANCE
    assert all(c == (m.nonzero()[1].min(), m.nonzero()[0].min(), m.nonzero()[1].max() + 1,
                     m.nonzero()[0].max() + 1) for c, m in zip(cues, exemplars))


def test_a_twin_alone_says_nothing_of_its_class():
    """Over many scenes every (shape, class) pair of a twin is as frequent: a
    network that sees the twin and not the exemplars is at chance (1 / 3)."""
    counts = np.zeros((2, 3))
    for i in range(600):
        _, masks, labels, context, _ = make_twins_scene(np.random.default_rng([7, i]), 96,
                                                        MIN_DISTANCE)
        for m, label, far in zip(masks, labels, context):
            if far:
                counts[int(_fill(m) > 0.95), label] += 1
    expected = counts.sum() / 6
    # chi-square with 5 degrees of freedom: 20.5 is its 0.1 % tail
    assert ((counts - expected) ** 2 / expected).sum() < 20.5, counts


def test_twins_oracle_keys_touch_the_twins_only():
    plain, masks, labels, context, _ = make_twins_scene(np.random.default_rng(4), 96,
                                                        MIN_DISTANCE)
    oracle, masks_b, labels_b, _, _ = make_twins_scene(np.random.default_rng(4), 96,
                                                       MIN_DISTANCE, oracle=True)
    assert labels == labels_b and all((a == b).all() for a, b in zip(masks, masks_b))
    for m, label, far in zip(masks, labels, context):
        ys, xs = np.nonzero(m)
        x0, y0 = xs.min(), ys.min()
        near = lambda img: (np.abs(img[max(y0 - 6, 0):y0, max(x0 - 6, 0):x0].astype(int)  # noqa
                                   - KEY_COLOURS[label]).max(-1) < 25).mean()
        assert near(oracle) > 0.8 if far else near(oracle) < 0.2
        assert near(plain) < 0.2


def test_twins_scenes_write_their_context_maps(tmp_path):
    import cv2
    out = make_context_shapes(str(tmp_path / 't'), 3, 1, seed=2, scenes='twins')
    coco = json.load(open(osp.join(out, 'annotations', 'instances_train.json')))
    for image in coco['images']:
        name = image['file_name']
        sem = cv2.imread(osp.join(out, 'semantic', 'train', name), cv2.IMREAD_UNCHANGED)
        ctx = cv2.imread(osp.join(out, 'context', 'train', name), cv2.IMREAD_UNCHANGED)
        anns = [x for x in coco['annotations'] if x['image_id'] == image['id']]
        assert len({x['category_id'] for x in anns}) == 2
        assert [x['context'] for x in anns] == [False, False] + [True] * (len(anns) - 2)
        # the context map is the twins' pixels: the objects but the exemplars
        assert (ctx > 0).sum() == sum(x['area'] for x in anns if x['context'])
        assert ((ctx > 0) <= (sem > 0)).all() and (ctx > 0).sum() < (sem > 0).sum()
    with pytest.raises(ValueError, match="scenes must be one of"):
        make_context_shapes(str(tmp_path / 'u'), 1, 1, scenes='pairs')


def test_generator_rejects_impossible_settings():
    with pytest.raises(ValueError, match='no room'):
        make_key_scene(np.random.default_rng(0), 64, MIN_DISTANCE)
    with pytest.raises(ValueError, match='min_key_distance'):
        make_context_shapes('/nonexistent', 2, 2, min_key_distance=-1)


def test_segmentation_scores_against_direct_counts():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (30, 30))
    logits = rng.normal(size=(4, 30, 30))
    pred = logits.argmax(0)
    conf = seg_confusion(pred, gt)
    oconf = object_class_confusion(logits, gt)
    scores = seg_scores(conf, oconf)
    obj = gt > 0
    right = sum(1 for g, lg in zip(gt[obj], logits[:, obj].T) if 1 + np.argmax(lg[1:]) == g)
    assert scores['context_acc'] == pytest.approx(right / obj.sum())
    assert scores['object_recall'] == pytest.approx(((pred > 0) & obj).sum() / obj.sum())
    ious = [((pred == c) & (gt == c)).sum() / ((pred == c) | (gt == c)).sum() for c in range(4)]
    assert scores['miou'] == pytest.approx(np.mean(ious))
    # restricted to a context map: the same count over its pixels
    context = rng.random((30, 30)) < 0.5
    right = sum(1 for g, lg in zip(gt[obj & context], logits[:, obj & context].T)
                if 1 + np.argmax(lg[1:]) == g)
    assert np.trace(object_class_confusion(logits, gt, context)) == right
    assert object_class_confusion(logits, gt, context).sum() == (obj & context).sum()


def test_detection_scores_against_direct_counts():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], float)
    images = [dict(gt_bboxes=gt, gt_labels=np.array([0, 1, 2]),
                   # object 0: best-scoring overlapping box has the right class;
                   # object 1: the wrong class scores higher; object 2: missed
                   bboxes=np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30],
                                    [21, 20, 30, 30], [80, 80, 90, 90]], float),
                   scores=np.array([0.9, 0.5, 0.4, 0.8, 0.99]),
                   labels=np.array([0, 1, 1, 0, 2]))]
    s = det_scores(images)
    assert s['recall50'] == pytest.approx(2 / 3)
    assert s['context_acc'] == pytest.approx(1 / 2)
    # only the flagged objects count for the context accuracy, all for the recall
    for flags, acc in (([True, False, True], 1.0), ([False, True, True], 0.0),
                       ([True, True, True], 0.5)):
        s = det_scores([dict(images[0], gt_context=np.array(flags))])
        assert s['recall50'] == pytest.approx(2 / 3)
        assert s['context_acc'] == pytest.approx(acc)


def test_detection_context_flags_come_from_the_annotations(tmp_path):
    """Each loaded ground-truth box gets its annotation's ``context`` flag
    (a twins scene: the twins, not the exemplars), found by its box whatever
    the order; a box not annotated, or a file without flags, is refused by name."""
    make_context_shapes(str(tmp_path / 'twins'), 2, 3, seed=5, scenes='twins')
    ann_file = str(tmp_path / 'twins' / 'annotations' / 'instances_val.json')
    flags = gt_context_flags(ann_file)
    with open(ann_file) as f:
        coco = json.load(f)
    assert sorted(flags) == sorted(im['id'] for im in coco['images'])
    for img_id, (boxes, context) in flags.items():
        anns = [a for a in coco['annotations'] if a['image_id'] == img_id]
        # two exemplars (no context), then the twins
        assert context.tolist() == [a['context'] for a in anns] and context.sum() == len(anns) - 2
        order = np.arange(len(boxes))[::-1]
        assert match_context_flags(boxes[order], flags[img_id]).tolist() == \
            context[order].tolist()
        with pytest.raises(ValueError, match='not among'):
            match_context_flags(boxes[:1] + 3, flags[img_id])
        with pytest.raises(ValueError, match='without annotated boxes'):
            match_context_flags(boxes[:1], NO_BOXES)
    assert match_context_flags(np.zeros((0, 4)), NO_BOXES).shape == (0, )
    for ann in coco['annotations']:
        del ann['context']
    old = str(tmp_path / 'v1.json')
    with open(old, 'w') as f:
        json.dump(coco, f)
    with pytest.raises(KeyError, match='v1.json: annotation 1 has no "context" flag'):
        gt_context_flags(old)


def _segmentor(row: Row):
    from mmengine.registry import MODELS
    cfg = compose_config(row, '/unused', 10, 0, '/unused')
    with DefaultScope.overwrite_default_scope('mmseg'):
        import mmseg.models  # noqa: F401
        import mmctx  # noqa: F401
        return MODELS.build(cfg.model)


def test_the_floor_cannot_see_the_key_and_the_context_head_can():
    """The benchmark's premise, measured: the baseline's receptive field stops
    short of the key from every object pixel; Base-OC (SA) sees the whole image."""
    torch.manual_seed(0)
    floor, context = QUICK_ROWS
    assert floor.role == 'floor' and context.role == 'module'
    assert receptive_radius(_segmentor(floor), 128) < MIN_DISTANCE
    assert receptive_radius(_segmentor(context), 128) >= 64  # the whole 128-px input
    cfg = Config.fromfile(osp.join(REPO, 'configs/context_benchmark/_base_/seg_key_96.py'))
    assert cfg.crop_size == (96, 96)


def test_twins_rows_are_their_key_rows_on_the_twins_scenes():
    """A "(twins)" row trains its key row's network, fragment and budget on the
    twins scenes (the oracle's for the ceiling): the same floor premise holds.
    The row differs from its key row in its group and scenes alone, and
    compose_config reads the scenes through ``data_dir`` only (checked for
    every row by test_every_row_composes_from_its_paper_config)."""
    from dataclasses import replace
    twins = [r for r in ROWS if r.group.endswith(' (twins)')]
    assert {r.group for r in twins} == {'OCNet (twins)', 'GCNet (twins)', 'GCNL (det) (twins)',
                                        'Self-attention (det) (twins)'}
    assert len(twins) == 16
    for row in twins:
        key = next(r for r in ROWS if r.group == row.group[:-len(' (twins)')]
                   and r.name == row.name)
        assert SCENE_SETS[row.data] == ('twins', SCENE_SETS[key.data][1])
        assert replace(row, group=key.group, data=key.data) == key, row.name


def test_the_longer_twins_rows_are_the_twins_rows_at_twice_their_budget():
    """The twins' RetinaNet rows of Woo et al. and Lee et al. again at 2400
    iterations, one floor for both: each row is its twins row but for the
    group and the budget, and the group names both papers' claims."""
    from dataclasses import replace

    from mmctx.analysis.context_benchmark import GROUP_CLAIMS, LONGER_GROUP
    longer = [r for r in ROWS if r.group == LONGER_GROUP]
    assert [r.name for r in longer] == ['RetinaNet FPN (floor)', 'RetinaNet BFPN',
                                        'RetinaNet EBFPN', 'RetinaNet + self-attention']
    for row in longer:
        twin = next(r for r in ROWS if r.group.endswith('(det) (twins)') and r.name == row.name)
        assert twin.iters == 1200 and row.iters == 2400 and row.key != twin.key
        assert replace(row, group=twin.group, train_iters=0) == twin, row.name
    assert [r.role for r in longer].count('floor') == 1
    claims = GROUP_CLAIMS[LONGER_GROUP]
    assert 'twice the budget' in claims and 'Table 2' in claims and 'Table 6' in claims
    # compose_config trains the row's own budget when the tool passes row.iters
    cfg = compose_config(longer[2], '/unused', longer[2].iters, 0, '/unused')
    assert cfg.train_cfg.max_iters == 2400
    assert cfg.param_scheduler[-1].end == 2400


def _detector(row: Row):
    """The row's detector as composed, before ``init_weights`` (mmdet's ResNet
    zero-initialises the last norm of each residual branch there, which would
    hide the branches from the gradient)."""
    from mmengine.registry import MODELS
    cfg = compose_config(row, '/unused', 10, 0, '/unused')
    with DefaultScope.overwrite_default_scope('mmdet'):
        import mmdet.models  # noqa: F401
        import mmctx  # noqa: F401
        return MODELS.build(cfg.model)


def _det_row(group, role):
    return next(r for r in ROWS if r.task == 'det' and r.group == group and r.role == role)


def test_the_detection_floor_cannot_see_the_key_and_self_attention_can():
    """The detection rows' premise: the RetinaNet floor's classification
    logits stop short of the key (radius 33 px measured on the logits
    upsampled to the image, as for segmentation); the self-attention on C2
    sees the whole image."""
    torch.manual_seed(0)
    for group in ('GCNL (det)', 'Self-attention (det)'):
        assert receptive_radius(_detector(_det_row(group, 'floor')), 128) < MIN_DISTANCE
    assert receptive_radius(_detector(_det_row('Self-attention (det)', 'module')), 128) >= 64


def test_the_mask_rcnn_floor_cannot_see_the_key_from_a_disc_box():
    """GCNet's detection rows: a Mask R-CNN RoI's class sees P2 inside its box,
    whose every pixel sees ``r`` px around it (``r``: a one-pixel RoI's
    reach). A disc's box corner lies 0.29 d / 2 px (Chebyshev) from the disc,
    so from its box the floor reaches at most r + 0.29 d / 2 px beyond the
    disc: short of the key. The oracle ceiling is the same network."""
    torch.manual_seed(0)
    floor = _detector(_det_row('GCNet (det)', 'floor'))
    reach = receptive_radius(floor, 128)
    corner = OBJECT_SIZE[1] / 2 * (1 - 2 ** -0.5)
    assert reach + corner < MIN_DISTANCE, (reach, corner)
    assert reach >= 16  # the measurement sees P2's 3x3 convs, not only the RoI's pixel


def test_the_mask_rcnn_fragment_keeps_each_papers_blocks_in_c2():
    """configs/context_benchmark/_base_/mask-rcnn_key_96.py on the composed
    GCNet rows (Cao et al., Table 5(a)): the paper's backbone type and block
    settings stay, in the one stage there is (before its last block for NL /
    SNL, in every bottleneck for GC); P2, RPN anchors 16 / 20 / 25 px, RoIs on
    stride 4, 3 classes, masks loaded, BN (no SyncBN on one CPU). The
    diagnostic rows change one setting of the GC r16 blocks' transform."""
    rows = {r.name: r for r in ROWS if r.group == 'GCNet (det)'}
    diagnostics = {'+ GC r16, bottleneck=False (diagnostic)': dict(bottleneck=False),
                   '+ GC r16, norm=None (diagnostic)': dict(norm=None)}
    assert [r.paper for r in rows.values()] == ['37.2', '', '38.0', '38.1', '39.4', '39.9', '', '']
    blocks = {}
    for name, row in rows.items():
        assert row.fragment_path.endswith('mask-rcnn_key_96.py') and row.iters == 1200
        cfg = compose_config(row, '/data', row.iters, 0, '/work')
        model = cfg.model
        assert model.type == 'MaskRCNN' and 'SyncBN' not in cfg.pretty_text
        assert (model.backbone.depth, model.backbone.base_channels) == (50, 16)
        assert model.backbone.num_stages == 1 and model.backbone.norm_cfg.type == 'BN'
        assert (model.neck.in_channels, model.neck.num_outs) == ([64], 1)
        rpn = model.rpn_head.anchor_generator
        assert rpn.strides == [4] and rpn.ratios == [1.0] and rpn.scales is None
        sizes = [rpn.octave_base_scale * 4 * 2 ** (i / rpn.scales_per_octave)
                 for i in range(rpn.scales_per_octave)]
        assert np.round(sizes).tolist() == [16, 20, 25]
        roi = model.roi_head
        assert roi.bbox_roi_extractor.featmap_strides == [4] == roi.mask_roi_extractor.featmap_strides
        assert roi.bbox_head.num_classes == 3 == roi.mask_head.num_classes
        load = next(t for t in cfg.train_dataloader.dataset.pipeline
                    if t.type == 'LoadAnnotations')
        assert load.with_mask
        plugins = model.backbone.get('plugins') or []
        paper = Config.fromfile(osp.join(REPO, row.config)).model.backbone.get('plugins') or []
        for p in paper:
            p.cfg.update(diagnostics.get(name, {}))
        assert [p.cfg for p in plugins] == [p.cfg for p in paper], name
        assert all(p.stages == (True, ) for p in plugins)
        blocks[name] = [(p.cfg.type, p.cfg.get('ratio'), p.position, p.get('blocks'))
                        for p in plugins]
    assert blocks == {
        'Mask R-CNN FPN (floor)': [], 'Mask R-CNN FPN, oracle key (ceiling)': [],
        '+ 1 NL (c4; C2 here)': [('NonLocal2dBlock', None, 'after_add', (-2, ))],
        '+ 1 SNL (c4; C2 here)': [('SimplifiedNonLocal2d', None, 'after_add', (-2, ))],
        '+ GC r16 (c3-c5; C2 here)': [('GlobalContextBlock', 16, 'after_conv3', None)],
        '+ GC r4 (c3-c5; C2 here)': [('GlobalContextBlock', 4, 'after_conv3', None)],
        **{name: [('GlobalContextBlock', 16, 'after_conv3', None)] for name in diagnostics}}
    assert rows['+ 1 NL (c4; C2 here)'].overrides == rows['+ GC r16 (c3-c5; C2 here)'].overrides
    assert all(rows[name].config == rows['+ GC r16 (c3-c5; C2 here)'].config
               for name in diagnostics)


def test_the_enl_floor_cannot_see_the_key_from_a_disc_box():
    """Levi & Ullman's rows: the two-stage Faster R-CNN floor reaches, from a
    disc's box, short of the key of its 128-px scenes (as for Mask R-CNN:
    a one-pixel RoI's reach plus a box corner's distance to its disc); its
    reach includes C3 (through the top-down path), and the ENL / NL rows'
    block on C3 sees the whole image."""
    torch.manual_seed(0)
    rows = {r.role: r for r in ROWS if r.group == 'ENL (det)'}
    floor = _detector(rows['floor'])
    reach = receptive_radius(floor, 192)
    corner = OBJECT_SIZE[1] / 2 * (1 - 2 ** -0.5)
    assert reach + corner < KEY_DISTANCE[rows['floor'].img_size], (reach, corner)
    assert reach > 40  # C2 alone reaches 25 px (the Mask R-CNN floor)
    for row in ROWS:
        if row.group == 'ENL (det)' and row.role == 'module':
            assert receptive_radius(_detector(row), 192) >= 96, row.name


def test_the_enl_fragment_puts_each_papers_block_on_c3():
    """configs/context_benchmark/_base_/faster-rcnn_key_128.py on the composed
    ENL rows (Levi & Ullman, Table 4): two stages, P2 and P3, the paper's
    neck and block on the top-down level of C3 (the paper's res5 / res4 /
    res3 levels), RPN anchors 16 / 20 / 25 px at stride 4, 128-px scenes."""
    rows = {r.name: r for r in ROWS if r.group == 'ENL (det)'}
    papers = {name: (r.paper, r.role, r.data) for name, r in rows.items()}
    assert papers == {
        'Faster R-CNN FPN (floor)': ('35.84 (APs 18.60)', 'floor', 'key'),
        'Faster R-CNN FPN, oracle key (ceiling)': ('', 'ceiling', 'oracle'),
        '+3 NL, TD (original NL; C3 here)': ('36.90 (APs 20.41)', 'module', 'key'),
        '+3 NL, TD, eff (ENL; C3 here)': ('36.59 (APs 20.35)', 'module', 'key')}
    for name, row in rows.items():
        assert row.img_size == 128 and row.iters == 1200
        cfg = compose_config(row, '/data', row.iters, 0, '/work')
        model, paper = cfg.model, Config.fromfile(osp.join(REPO, row.config)).model
        assert model.type == 'FasterRCNN' and cfg.train_dataloader.batch_size == 8
        assert (model.backbone.depth, model.backbone.base_channels) == (50, 16)
        assert model.backbone.out_indices == (0, 1) and model.backbone.norm_cfg.type == 'BN'
        assert (model.neck.in_channels, model.neck.num_outs) == ([64, 128], 2)
        assert model.neck.type == paper.neck.type
        if row.role == 'module':
            assert model.neck.block_cfg == paper.neck.block_cfg, name
            assert model.neck.block_levels == (1, ) and paper.neck.block_levels == (3, 2, 1)
        rpn = model.rpn_head.anchor_generator
        assert rpn.strides == [4, 8] and rpn.ratios == [1.0] and rpn.octave_base_scale == 4
        assert model.roi_head.bbox_roi_extractor.featmap_strides == [4, 8]
        assert model.roi_head.bbox_head.num_classes == 3
        assert cfg.val_evaluator.ann_file == f'/data/{row.data}-128/annotations/instances_val.json'
    enl = _detector(rows['+3 NL, TD, eff (ENL; C3 here)'])
    feats = enl.extract_feat(torch.zeros(1, 3, 128, 128))
    assert [tuple(f.shape) for f in feats] == [(1, 32, 32, 32), (1, 32, 16, 16)]
    assert list(enl.neck.td_blocks) == ['1']


def test_the_detection_fragment_is_design_a():
    """The fragment's settings (configs/context_benchmark/_base_/det_key_96.py)
    on the composed configs: ResNet-50 layout at width 16, its first stage
    only, P2 only, anchors 16 / 20 / 25 px at stride 4, 1200 iterations at
    AdamW lr 5e-3 with a 20 % warm-up."""
    ebfpn = next(r for r in ROWS if r.name == 'RetinaNet EBFPN')
    assert ebfpn.iters == 1200 and ROWS[0].iters == 600
    cfg = compose_config(ebfpn, '/data', ebfpn.iters, 0, '/work')
    backbone, (fpn, refine), head = cfg.model.backbone, cfg.model.neck, cfg.model.bbox_head
    assert (backbone.type, backbone.depth, backbone.base_channels) == ('ResNet', 50, 16)
    assert backbone.num_stages == 1 and backbone.out_indices == (0, )
    assert (fpn.in_channels, fpn.num_outs, fpn.out_channels) == ([64], 1, 32)
    assert fpn.add_extra_convs is False and fpn.start_level == 0
    # the paper's refine block stays, on the one level
    assert refine.type == 'EBFPN' and refine.refine_cfg.type == 'GCNLBlock'
    assert (refine.in_channels, refine.num_levels, refine.refine_level) == (32, 1, 0)
    anchors = head.anchor_generator
    assert anchors.strides == [4] and anchors.ratios == [1.0]
    sizes = [anchors.octave_base_scale * 4 * 2 ** (i / anchors.scales_per_octave)
             for i in range(anchors.scales_per_octave)]
    assert np.round(sizes).tolist() == [16, 20, 25]
    assert head.stacked_convs == 1 and head.num_classes == 3
    # the RetinaNet rows' schedule: AdamW at 5e-3, warm-up over 20 % (240 of
    # 1200 iterations), then cosine; the Mask R-CNN rows keep the shared 1e-2, 10 %
    assert cfg.train_cfg.max_iters == 1200
    assert (cfg.optim_wrapper.optimizer.type, cfg.optim_wrapper.optimizer.lr) == ('AdamW', 5e-3)
    assert cfg.param_scheduler[0].end == cfg.param_scheduler[1].begin == 240
    assert cfg.param_scheduler[1].end == 1200
    mask = compose_config(_det_row('GCNet (det)', 'floor'), '/data', 1200, 0, '/work')
    assert mask.optim_wrapper.optimizer.lr == 1e-2 and mask.param_scheduler[0].end == 120
    assert cfg.val_evaluator.ann_file == '/data/key/annotations/instances_val.json'
    # Lee et al.'s Adam-then-SGD hook would replace the fragment's AdamW
    gsa = compose_config(_det_row('Self-attention (det)', 'module'), '/data', 10, 0, '/work')
    assert gsa.custom_hooks == [] and gsa.model.neck.attention_cfg.init_cfg is None
    model = _detector(ebfpn)
    feats = model.extract_feat(torch.zeros(1, 3, 96, 96))
    assert len(feats) == 1 and feats[0].shape == (1, 32, 24, 24)


@lru_cache(maxsize=None)
def _paper_parts(path):
    """The head type and the neck type(s) of a paper config, loaded once per
    path (rows share them)."""
    model = Config.fromfile(osp.join(REPO, path)).model
    neck = model.get('neck')
    necks = tuple(n['type'] for n in (neck if isinstance(neck, list) else [neck] if neck else []))
    head = model.get('decode_head') or model.get('bbox_head') or model.roi_head.bbox_head
    return head.get('type'), necks


def test_every_row_composes_from_its_paper_config():
    for row in ROWS:
        cfg = compose_config(row, '/data', 40, 1, '/work')
        head, necks = _paper_parts(row.config)
        if row.task == 'seg':
            assert cfg.model.decode_head.type == head, row.name
            assert cfg.model.backbone.depth == 18 and cfg.model.backbone.num_stages == 1
        else:
            assert (cfg.model.get('bbox_head') or cfg.model.roi_head.bbox_head).type == head
            neck = cfg.model.neck
            assert tuple(n.type for n in (neck if isinstance(neck, list) else [neck])) == necks
            stages = 2 if row.fragment == 'faster-rcnn-c3' else 1
            assert cfg.model.backbone.depth == 50 and cfg.model.backbone.num_stages == stages
        assert cfg.train_dataloader.dataset.data_root == f'/data/{row.data_dir}'
        resize = [(t.get('scale'), t.get('scale_factor')) for t in cfg.train_dataloader.dataset
                  .pipeline + cfg.val_dataloader.dataset.pipeline if 'Resize' in t.type]
        if row.task == 'det':  # the scenes at the size they are drawn (row.img_size)
            assert resize == [(None, 1.0)] * 2, row.name
        assert cfg.train_cfg.max_iters == 40 and cfg.randomness.seed == 1
        assert cfg.train_cfg.val_begin > 40  # no validation inside training
        # the warm-up: 10 % of the iterations, 20 % for the RetinaNet rows
        warmup = 8 if row.fragment_path == FRAGMENTS['det'] else 4
        assert cfg.param_scheduler[0].end == cfg.param_scheduler[1].begin == warmup, row.name
        assert cfg.param_scheduler[1].end == 40


def test_summary_and_table():
    meta = lambda name, role: dict(group='OCNet', name=name, task='seg', role=role,  # noqa
                                   paper='79.40', config='x', data='key')
    recs = []
    for seed, (f, m) in enumerate([(0.33, 0.95), (0.35, 0.97), (0.31, 0.99)]):
        for name, role, acc in (('floor', 'floor', f), ('SA', 'module', m)):
            recs.append(dict(row=name, seed=seed, meta=meta(name, role), wall_s=10.0,
                             peak_mb=100.0 + seed,
                             scores=dict(context_acc=acc, object_recall=0.9, miou=0.5)))
    summary = summarize(recs)
    assert [r['name'] for r in summary] == ['floor', 'SA']
    mean, std = summary[1]['stats']['context_acc']
    assert mean == pytest.approx(0.97) and std == pytest.approx(0.02)
    assert summary[0]['peak_mb'] == 102.0
    table = render_table(summary)
    assert '| SA | 97.0 ± 2.0 |' in table and '+64.0' in table


@pytest.fixture(scope='module')
def key_scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp('context')
    make_context_shapes(str(root / 'key'), num_train=400, num_val=100, seed=0)
    return str(root)


def _committed(row_key, seed, name='results'):
    with open(osp.join(REPO, 'docs', 'context_benchmark', f'{name}.json')) as f:
        records = json.load(f)['records']
    return [r['scores']['context_acc'] for r in records if r['row'] == row_key and
            (seed is None or r['seed'] == seed)]


def test_context_head_reads_the_key_the_floor_cannot(key_scenes, tmp_path):
    """The benchmark's --quick run (the first seed, 0, of the floor and of Base-OC (SA),
    QUICK_ITERS = 300 iterations, ~60 s on one core): Base-OC (SA) labels the objects
    from the far key, the same network without it stays at chance, the gap is far
    above the seed spread of the committed 3-seed quick results, and both runs
    reproduce their committed records."""
    torch.set_num_threads(1)
    acc = {}
    for row in QUICK_ROWS:
        cfg = compose_config(row, key_scenes, QUICK_ITERS, 0, str(tmp_path / row.key))
        cfg.default_hooks.logger.interval = 1000
        scores, _ = train_and_score(cfg)
        acc[row.role] = scores['context_acc']
        spread = float(np.std(_committed(row.key, None, 'quick'), ddof=1))
        assert abs(scores['context_acc'] - _committed(row.key, 0, 'quick')[0]) <= max(
            2 * spread, 0.02)
    floor_spread = float(np.std(_committed(QUICK_ROWS[0].key, None, 'quick'), ddof=1))
    sa_spread = float(np.std(_committed(QUICK_ROWS[1].key, None, 'quick'), ddof=1))
    assert abs(acc['floor'] - 1 / 3) < 0.05, acc
    assert acc['module'] > 0.95, acc
    assert acc['module'] - acc['floor'] > 50 * max(floor_spread, sa_spread, 0.005), acc


def test_detection_rows_score_the_twins_alone(tmp_path, monkeypatch):
    """A detection row's scoring (train_and_score, 2 iterations of the twins'
    RetinaNet floor) gets every validation object with its annotation's
    ``context`` flag: the twins count for the context accuracy, the exemplars
    do not."""
    import mmctx.analysis.context_benchmark as benchmark
    row = next(r for r in ROWS if r.group == 'GCNL (det) (twins)' and r.role == 'floor')
    make_context_shapes(str(tmp_path / row.data_dir), 8, 3, seed=1, scenes='twins')
    seen = []
    monkeypatch.setattr(benchmark, 'det_scores', lambda images: seen.extend(images) or {})
    cfg = compose_config(row, str(tmp_path), 2, 0, str(tmp_path / 'work'), batch_size=2)
    train_and_score(cfg, row.task)
    with open(tmp_path / row.data_dir / 'annotations' / 'instances_val.json') as f:
        anns = json.load(f)['annotations']
    assert len(seen) == 3
    assert sorted(len(im['gt_context']) for im in seen) == sorted(
        sum(a['image_id'] == i for a in anns) for i in {a['image_id'] for a in anns})
    assert sum(im['gt_context'].sum() for im in seen) == sum(a['context'] for a in anns)
    assert 0 < sum(a['context'] for a in anns) < len(anns)


def _tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'context_benchmark_tool', osp.join(REPO, 'tools', 'analysis_tools', 'context_benchmark.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _records(rows, iters):
    """A made-up run of each row at seed 0 (a different score each)."""
    other = dict(seg=dict(object_recall=0.9, miou=0.4), det=dict(recall50=1.0))
    return [dict(row=r.key, seed=0, iters=iters, wall_s=10.0 + i, peak_mb=500.0,
                 scores=dict(context_acc=0.3 + 0.3 * i, **other[r.task]),
                 meta=dict(group=r.group, name=r.name, task=r.task, role=r.role,
                           paper=r.paper, config=r.config, data=r.data))
            for i, r in enumerate(rows)]


def test_the_tool_takes_recorded_runs_instead_of_training(tmp_path):
    """``--reuse results.json``: a run recorded there (same row, seed and
    iterations) is not trained again; it is copied to the work directory (a
    later call finds it) and enters the table as it was recorded, labelled as
    its row is now."""
    tool = _tool()
    rows = [r for r in ROWS if r.group == 'GCNL']
    records = _records(rows, 7)
    recorded = tmp_path / 'recorded.json'
    stale = [dict(r, meta=dict(r['meta'], paper='0.00')) for r in records]
    recorded.write_text(json.dumps(dict(records=stale)))  # relabelled by the rows
    work, out = tmp_path / 'work', tmp_path / 'out'
    assert tool.main(['--groups', 'GCNL', '--seeds', '0', '--iters', '7', '--num-train', '1',
                      '--num-val', '1', '--work-dir', str(work), '--out', str(out),
                      '--reuse', str(recorded)]) == 0
    assert (out / 'results_gcnl.md').read_text() == render_table(summarize(records))
    written = json.loads((out / 'results_gcnl.json').read_text())
    assert written['records'] == records and written['reused'] == len(records)
    for r in records:
        run = work / 'runs' / r['row']
        assert json.loads((run / 'seed0-7it.json').read_text()) == r
        assert not list(run.glob('*.log'))  # nothing trained
    (tmp_path / 'other.json').write_text(json.dumps(dict(rows=[])))
    with pytest.raises(SystemExit, match='other.json: no "records" list'):
        tool.main(['--groups', 'GCNL', '--num-train', '1', '--num-val', '1', '--work-dir',
                   str(work), '--out', str(out), '--reuse', str(tmp_path / 'other.json')])


def test_the_hour_is_the_papers_rows_of_its_groups():
    """``--hour``: every row of HOUR_GROUPS that a paper reports, with the
    floors and ceilings, and nothing else (no variant, no diagnostic, no twins
    or two-stage detector row)."""
    hour = {(r.group, r.name) for r in headline_rows(ROWS, HOUR_GROUPS)}
    assert hour == {
        ('OCNet', 'Dilated FCN (floor)'), ('OCNet', 'Dilated FCN, oracle key (ceiling)'),
        ('OCNet', 'Base-OC (SA)'), ('OCNet', 'Base-OC (ISA)'), ('OCNet', 'Pyramid-OC (ISA)'),
        ('OCNet', 'ASP-OC (ISA)'),
        ('GCNet', 'FCN-concat baseline (floor)'), ('GCNet', 'NL head'), ('GCNet', 'SNL head'),
        ('GCNet', 'GC head'),
        ('GCNL (det)', 'RetinaNet FPN (floor)'),
        ('GCNL (det)', 'RetinaNet FPN, oracle key (ceiling)'),
        ('GCNL (det)', 'RetinaNet BFPN'), ('GCNL (det)', 'RetinaNet EBFPN'),
        ('Self-attention (det)', 'RetinaNet FPN (floor)'),
        ('Self-attention (det)', 'RetinaNet + self-attention')}
    # the hour's expected wall time: the committed runs of its rows (the shared
    # floor once), two at a time, plus the 6.0 min the measured hour spent
    # beside training (scenes, the processes' start, scoring: 57.0 min wall
    # against 101.9 / 2 of training)
    with open(osp.join(REPO, 'docs', 'context_benchmark', 'results.json')) as f:
        records = json.load(f)['records']
    keys = {r.key for r in headline_rows(ROWS, HOUR_GROUPS)
            if not (r.group == 'Self-attention (det)' and r.role == 'floor')}
    train = sum(r['wall_s'] for r in records if r['row'] in keys and r['seed'] < 3)
    assert len([r for r in records if r['row'] in keys]) == 3 * 15
    assert train / 2 + 6.0 * 60 < 3600, train


def test_rows_that_compose_to_one_run_share_it():
    """The RetinaNet floors of Woo et al. and Lee et al. (two paper configs)
    compose to the same run; every other RetinaNet row is its own."""
    rows = [r for r in ROWS if r.group in ('GCNL (det)', 'Self-attention (det)')]
    shared = shared_runs(rows, '/data', {r.key: r.iters for r in rows})
    floor = {r.group: r.key for r in rows if r.role == 'floor'}
    assert shared == {r.key: floor['GCNL (det)'] if r.key == floor['Self-attention (det)']
                      else r.key for r in rows}
    assert shared_runs(rows, '/data', {r.key: 1200 if r.group == 'GCNL (det)' else 600
                                       for r in rows}) == {r.key: r.key for r in rows}


def test_the_tool_trains_a_shared_run_once(tmp_path):
    """A row whose run another row of the selection composes to as well is
    not trained: it records that row's run, labelled as itself, and the
    training total counts the run once."""
    tool = _tool()
    groups = ['GCNL (det)', 'Self-attention (det)']
    rows = [r for r in ROWS if r.group in groups]
    lee_floor = next(r for r in rows if r.group == groups[1] and r.role == 'floor')
    records = _records(rows, 5)
    recorded = tmp_path / 'recorded.json'
    recorded.write_text(json.dumps(dict(records=[r for r in records
                                                 if r['row'] != lee_floor.key])))
    work, out = tmp_path / 'work', tmp_path / 'out'
    assert tool.main(['--groups', *groups, '--seeds', '0', '--iters', '5', '--num-train', '1',
                      '--num-val', '1', '--work-dir', str(work), '--out', str(out),
                      '--reuse', str(recorded)]) == 0
    written = json.loads((out / 'results_gcnl-det_self-attention-det.json').read_text())
    floor = next(r for r in records if r['meta']['group'] == groups[0]
                 and r['meta']['role'] == 'floor')
    copy = next(r for r in written['records'] if r['row'] == lee_floor.key)
    assert copy == dict(floor, row=lee_floor.key, meta=tool.row_meta(lee_floor),
                        same_run_as=floor['row'])
    assert written['shared'] == 1 and written['reused'] == len(rows) - 1
    assert written['train_s_total'] == sum(r['wall_s'] for r in records
                                           if r['row'] != lee_floor.key)
    run = work / 'runs' / lee_floor.key
    assert json.loads((run / 'seed0-5it.json').read_text()) == copy
    assert not list(run.glob('*.log')) and not list(run.glob('*.spec'))  # nothing started


def test_committed_quick_results_are_the_table_of_their_records():
    """docs/context_benchmark/quick.md is what its records give: three seeds of
    the quick rows at QUICK_ITERS."""
    out = osp.join(REPO, 'docs', 'context_benchmark')
    with open(osp.join(out, 'quick.json')) as f:
        quick = json.load(f)
    with open(osp.join(out, 'quick.md')) as f:
        assert render_table(summarize(quick['records'])) == f.read()
    assert quick['seeds'] == [0, 1, 2]
    assert {(r['row'], r['iters']) for r in quick['records']} == {
        (row.key, QUICK_ITERS) for row in QUICK_ROWS}


def test_committed_results_are_the_table_of_their_records():
    """docs/context_benchmark/results.md is what the committed records give,
    and the README shows it unchanged."""
    out = osp.join(REPO, 'docs', 'context_benchmark')
    with open(osp.join(out, 'results.json')) as f:
        results = json.load(f)
    with open(osp.join(out, 'results.md')) as f:
        table = f.read()
    assert render_table(summarize(results['records'])) == table
    assert results['seeds'] == [0, 1, 2]
    assert {r['row'] for r in results['records']} == {r.key for r in ROWS}
    with open(osp.join(REPO, 'README.md')) as f:
        readme = f.read()
    block = readme.split('<!-- context-benchmark -->\n')[1].split('<!-- /context-benchmark -->')[0]
    assert block == table


def test_committed_hour_is_a_fresh_run_of_the_main_tables_rows():
    """docs/context_benchmark/hour.md is the table of its records: ``--hour``
    run from nothing (no reused run) in under an hour, every run the main
    table's run of that row and seed, score for score (the main table holds
    what the current code gives), the shared floor trained once."""
    out = osp.join(REPO, 'docs', 'context_benchmark')
    with open(osp.join(out, 'hour.json')) as f:
        hour = json.load(f)
    with open(osp.join(out, 'hour.md')) as f:
        assert render_table(summarize(hour['records'])) == f.read()
    assert hour['seeds'] == [0, 1, 2] and hour['reused'] == 0 and hour['shared'] == 3
    assert hour['wall_s'] < 3600
    rows = headline_rows(ROWS, HOUR_GROUPS)
    assert sorted((r['row'], r['seed']) for r in hour['records']) == sorted(
        (row.key, seed) for row in rows for seed in range(3))
    with open(osp.join(out, 'results.json')) as f:
        main = {(r['row'], r['seed'], r['iters']): r for r in json.load(f)['records']}
    for r in hour['records']:
        assert r['scores'] == main[r['row'], r['seed'], r['iters']]['scores'], r['row']


@pytest.mark.parametrize('group', ['Self-attention (det)', 'GCNL (det)'])
def test_committed_six_seed_tables_extend_the_main_one(group):
    """docs/context_benchmark/results_<group>.md (the RetinaNet groups of Lee
    et al. and Woo et al. at seeds 0-5) is the table of its records, and its
    seeds 0-2 are the main table's runs (taken with --reuse), not new ones."""
    out = osp.join(REPO, 'docs', 'context_benchmark')
    name = 'results_' + slug(group)
    with open(osp.join(out, f'{name}.json')) as f:
        six = json.load(f)
    with open(osp.join(out, f'{name}.md')) as f:
        assert render_table(summarize(six['records'])) == f.read()
    assert six['seeds'] == [0, 1, 2, 3, 4, 5]
    rows = {r.key for r in ROWS if r.group == group}
    assert {(r['row'], r['seed']) for r in six['records']} == {
        (row, seed) for row in rows for seed in range(6)}
    with open(osp.join(out, 'results.json')) as f:
        main = {(r['row'], r['seed']): r for r in json.load(f)['records']}
    for r in six['records']:
        if r['seed'] < 3:
            assert r == main[r['row'], r['seed']]
