"""Generate the synthetic "shapes" scene data set used by mmctx's demo and tests.

Every scene is a textured, noisy two-region background (``wall`` above a
tilted horizon, ``floor`` below, both *stuff* classes, with distractor
strokes) on which objects of four *thing* classes (circle, square, triangle,
star) are painted at several sizes, from small (~6 px) to large (~half the
image). One class per scene is repeated several times in a loose cluster, so
that context (the same object elsewhere in the image) helps - the property
the non-local / global-context papers rely on. Objects may occlude each other,
but every object stays at least half visible and its visible region has no
holes, so a polygon describes it exactly.

The output layout (``DIR`` = ``--out``)::

    images/{train,val}/000001.png                  RGB scenes
    annotations/instances_{train,val}.json         COCO instances (bbox + polygons)
    annotations/panoptic_{train,val}.json          COCO panoptic (things + stuff)
    annotations/panoptic_{train,val}/000001.png    panoptic id PNGs (id = R + 256 G + 256^2 B)
    semantic/{train,val}/000001.png                uint8 label maps, labels = index in CLASSES
    meta.json                                      generator arguments (re-runs with the
                                                   same arguments are skipped)

Generation is deterministic: scene ``i`` of a split depends only on
``(seed, split, i)`` and ``img_size``.

Each split is written from scratch: its image, panoptic and semantic
directories and its two json files are removed first, so that files of an
earlier, larger run cannot stay behind (mmseg's ``BaseSegDataset`` lists
every image of the directory and would mix them in).

Usage::

    python tools/dataset_converters/make_shapes.py --out data/shapes \
        --num-train 200 --num-val 50 --img-size 128 --seed=0
"""
import argparse
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np

THING_CLASSES = ('circle', 'square', 'triangle', 'star')
STUFF_CLASSES = ('wall', 'floor')
# Semantic / panoptic label order (mmdet's CocoPanopticDataset puts things
# first, then stuff; the semantic PNGs use the same indices).
CLASSES = THING_CLASSES + STUFF_CLASSES
# COCO category ids: 1-based, in CLASSES order.
CATEGORY_IDS = {name: i + 1 for i, name in enumerate(CLASSES)}
PALETTE = [(220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 200, 0),
           (128, 128, 128), (140, 90, 40)]
SPLIT_CODES = {'train': 0, 'val': 1}
GENERATOR_VERSION = 1

MIN_VISIBLE_FRACTION = 0.5
MIN_AREA = 16


# --------------------------------------------------------------------------
# Geometry of one object
# --------------------------------------------------------------------------
def _regular_polygon(center, radius, n, angle, inner=None):
    """Vertices of a regular n-gon (or an n-point star when ``inner``)."""
    pts = []
    steps = 2 * n if inner is not None else n
    for k in range(steps):
        r = radius if (inner is None or k % 2 == 0) else inner
        a = angle + 2 * np.pi * k / steps
        pts.append((center[0] + r * np.cos(a), center[1] + r * np.sin(a)))
    return np.round(np.array(pts)).astype(np.int32)


def shape_mask(name, center, size, angle, img_size):
    """Binary uint8 mask of one object of class ``name``.

    ``size`` is the object's diameter in pixels.
    """
    mask = np.zeros((img_size, img_size), np.uint8)
    r = size / 2.0
    cx, cy = center
    if name == 'circle':
        cv2.circle(mask, (int(round(cx)), int(round(cy))),
                   max(int(round(r)), 2), 1, -1, lineType=cv2.LINE_8)
    elif name == 'square':
        # circumradius of a square whose side is ~0.8 * size
        pts = _regular_polygon(center, r * 0.8 * np.sqrt(2) / 2 * 1.2, 4,
                               angle + np.pi / 4)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8)
    elif name == 'triangle':
        pts = _regular_polygon(center, r, 3, angle - np.pi / 2)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8)
    elif name == 'star':
        pts = _regular_polygon(center, r, 5, angle - np.pi / 2, inner=r * 0.45)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8)
    else:
        raise ValueError(f'unknown shape class {name!r}')
    return mask


def _has_hole(mask):
    """Whether a binary mask has an interior hole (contour with a parent)."""
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return False
    return bool((hierarchy[0][:, 3] >= 0).any())


def mask_to_polygons(mask):
    """COCO polygons (list of flat [x, y, ...] lists) of a hole-free mask.

    The polygons run along pixel *edges* (vertices on pixel corners), so
    pycocotools rasterizes them back to exactly the mask's pixels - unlike
    ``cv2.findContours``, whose contours through boundary pixel centres lose
    half a pixel all round (a large error for small objects).
    """
    m = np.pad(mask.astype(bool), 1)
    fg = m[1:-1, 1:-1]
    # Directed boundary edges, interior on the right (image coords, y down):
    # for a foreground pixel (x, y) whose neighbour on a side is background.
    nxt = {}
    sides = (
        (m[:-2, 1:-1], (0, 0), (1, 0)),  # top:    (x, y) -> (x+1, y)
        (m[1:-1, 2:], (1, 0), (1, 1)),  # right:  (x+1, y) -> (x+1, y+1)
        (m[2:, 1:-1], (1, 1), (0, 1)),  # bottom: (x+1, y+1) -> (x, y+1)
        (m[1:-1, :-2], (0, 1), (0, 0)),  # left:   (x, y+1) -> (x, y)
    )
    for neighbour, (ax, ay), (bx, by) in sides:
        ys, xs = np.nonzero(fg & ~neighbour)
        for x, y in zip(xs.tolist(), ys.tolist()):
            nxt.setdefault((x + ax, y + ay), []).append((x + bx, y + by))

    def turn_right_first(prev, cur, options):
        # At a corner shared by two diagonal pixels take the right turn, so
        # each loop closes around one 4-connected piece.
        dx, dy = cur[0] - prev[0], cur[1] - prev[1]
        right = (cur[0] - dy, cur[1] + dx)
        return right if right in options else options[0]

    polys = []
    while nxt:
        start = min(nxt)  # top-left-most vertex: deterministic
        loop = [start]
        prev, cur = None, start
        while True:
            options = nxt[cur]
            step = options[0] if prev is None else turn_right_first(
                prev, cur, options)
            options.remove(step)
            if not options:
                del nxt[cur]
            prev, cur = cur, step
            if cur == start:
                break
            loop.append(cur)
        # drop vertices in the middle of straight runs
        corners = [
            p for i, p in enumerate(loop)
            if (loop[i - 1][0] - p[0]) * (loop[(i + 1) % len(loop)][1] - p[1])
            != (loop[i - 1][1] - p[1]) * (loop[(i + 1) % len(loop)][0] - p[0])
        ]
        polys.append([float(v) for p in corners for v in p])
    return polys


def mask_bbox(mask):
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


# --------------------------------------------------------------------------
# One scene
# --------------------------------------------------------------------------
def _smooth_noise(rng, img_size, cells):
    """Low-frequency noise in [-1, 1]: a random grid upsampled bicubically."""
    grid = rng.uniform(-1, 1, size=(cells, cells)).astype(np.float32)
    return cv2.resize(grid, (img_size, img_size), interpolation=cv2.INTER_CUBIC)


def _background(rng, img_size):
    """Textured wall/floor background and its stuff label map."""
    s = img_size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    horizon = rng.uniform(0.35, 0.7) * s
    slope = rng.uniform(-0.3, 0.3)
    floor = yy > horizon + slope * (xx - s / 2)
    stuff = np.where(floor, len(THING_CLASSES) + 1, len(THING_CLASSES))

    img = np.zeros((s, s, 3), np.float32)
    for region, cells in ((~floor, 4), (floor, 6)):
        base = rng.uniform(40, 215, size=3)
        tex = _smooth_noise(rng, s, cells)[..., None] * rng.uniform(15, 40)
        img[region] = (base + tex)[region]
    # floor stripes (perspective-free "tiles") for a high-frequency texture
    period = rng.uniform(6, 14)
    stripes = (np.sin(2 * np.pi * (xx + 0.5 * yy) / period) > 0.6)
    img[floor & stripes] *= rng.uniform(0.75, 0.9)
    # distractor strokes on the background (not objects)
    canvas = np.zeros((s, s, 3), np.uint8)
    for _ in range(rng.integers(2, 6)):
        p0 = tuple(int(v) for v in rng.integers(0, s, 2))
        p1 = tuple(int(v) for v in rng.integers(0, s, 2))
        color = tuple(int(v) for v in rng.integers(1, 255, 3))
        cv2.line(canvas, p0, p1, color, int(rng.integers(1, 3)))
    drawn = canvas.any(-1)
    img[drawn] = 0.5 * img[drawn] + 0.5 * canvas[drawn]
    return img, stuff.astype(np.uint8)


def _sample_size(rng, img_size):
    """Object diameter: a mix of small, medium and large objects."""
    u = rng.uniform()
    if u < 0.4:  # small
        lo, hi = 0.06, 0.12
    elif u < 0.8:  # medium
        lo, hi = 0.12, 0.25
    else:  # large
        lo, hi = 0.25, 0.45
    return max(6.0, rng.uniform(lo, hi) * img_size)


def _propose(rng, img_size, name, anchor=None):
    size = _sample_size(rng, img_size)
    margin = size / 2
    if anchor is None:
        center = rng.uniform(margin, img_size - margin, 2)
    else:  # repeated instances cluster around an anchor point
        center = np.clip(anchor + rng.normal(0, img_size * 0.2, 2), margin,
                         img_size - margin)
    return shape_mask(name, center, size, rng.uniform(0, 2 * np.pi),
                      img_size)


def make_scene(rng, img_size):
    """Render one scene.

    Returns:
        img (H, W, 3) uint8 RGB, instances (list of dict(name, mask)) in
        drawing order with their *visible* masks, and the stuff label map.
    """
    img, stuff = _background(rng, img_size)
    owner = np.full((img_size, img_size), -1, np.int32)  # instance per pixel
    full_areas, names, colors = [], [], []

    repeated = THING_CLASSES[rng.integers(len(THING_CLASSES))]
    num_repeat = int(rng.integers(3, 6))
    num_other = int(rng.integers(1, 5))
    anchor = rng.uniform(0.25, 0.75, 2) * img_size
    plan = [repeated] * num_repeat + [
        THING_CLASSES[k] for k in rng.integers(len(THING_CLASSES), size=num_other)
    ]
    for i, name in enumerate(plan):
        for _ in range(30):
            m = _propose(rng, img_size, name,
                         anchor if i < num_repeat else None)
            area = int(m.sum())
            if area < MIN_AREA:
                continue
            trial = owner.copy()
            trial[m > 0] = len(names)
            ok = True
            for k in range(len(names)):
                vis = (trial == k).astype(np.uint8)
                if (vis.sum() < MIN_VISIBLE_FRACTION * full_areas[k]
                        or _has_hole(vis)):
                    ok = False
                    break
            if ok and not _has_hole(m):
                owner = trial
                names.append(name)
                full_areas.append(area)
                colors.append(rng.uniform(20, 235, size=3))
                break

    out = img.copy()
    for k, color in enumerate(colors):
        sel = owner == k
        # per-object shading: a colour plus a weak gradient and noise
        shade = _smooth_noise(rng, img_size, 3)[sel][:, None] * 20
        out[sel] = color + shade
    out += rng.normal(0, rng.uniform(4, 12), size=out.shape)
    out = np.clip(out, 0, 255).astype(np.uint8)
    instances = [
        dict(name=n, mask=(owner == k).astype(np.uint8))
        for k, n in enumerate(names)
    ]
    return out, instances, stuff


# --------------------------------------------------------------------------
# Writing one split
# --------------------------------------------------------------------------
def _id_to_rgb(ids):
    return np.stack([ids % 256, (ids // 256) % 256, ids // 65536],
                    -1).astype(np.uint8)


def _write_png(path, array):
    if not cv2.imwrite(path, array):
        raise OSError(f'could not write {path}')


def _categories(with_stuff):
    cats = [dict(id=CATEGORY_IDS[n], name=n, supercategory='shape', isthing=1)
            for n in THING_CLASSES]
    if with_stuff:
        cats += [dict(id=CATEGORY_IDS[n], name=n, supercategory='scene',
                      isthing=0) for n in STUFF_CLASSES]
    return cats


def split_paths(out_dir, split):
    """The directories and json files that make up one split."""
    dirs = (osp.join(out_dir, 'images', split),
            osp.join(out_dir, 'annotations', f'panoptic_{split}'),
            osp.join(out_dir, 'semantic', split))
    jsons = (osp.join(out_dir, 'annotations', f'instances_{split}.json'),
             osp.join(out_dir, 'annotations', f'panoptic_{split}.json'))
    return dirs, jsons


def clear_split(out_dir, split):
    """Remove what an earlier run wrote for ``split`` (see the docstring)."""
    dirs, jsons = split_paths(out_dir, split)
    for d in dirs:
        if osp.islink(d) or osp.isfile(d):
            os.remove(d)
        elif osp.isdir(d):
            shutil.rmtree(d)
    for path in jsons:
        if osp.lexists(path):
            os.remove(path)


def write_split(out_dir, split, num_images, img_size, seed):
    clear_split(out_dir, split)
    (img_dir, pan_dir, sem_dir), (inst_json, pan_json) = split_paths(
        out_dir, split)
    for d in (img_dir, pan_dir, sem_dir):
        os.makedirs(d)

    images, instances_anns, panoptic_anns = [], [], []
    ann_id = 1
    for i in range(num_images):
        rng = np.random.default_rng([seed, SPLIT_CODES[split], i])
        img, objects, stuff = make_scene(rng, img_size)
        image_id = i + 1
        file_name = f'{image_id:06d}.png'
        images.append(dict(id=image_id, file_name=file_name,
                           height=img_size, width=img_size))
        _write_png(osp.join(img_dir, file_name), img[..., ::-1])

        semantic = stuff.copy()
        pan_ids = np.zeros((img_size, img_size), np.int64)
        segments = []
        for k, obj in enumerate(objects):
            m = obj['mask'] > 0
            label = CLASSES.index(obj['name'])
            semantic[m] = label
            seg_id = k + 1
            pan_ids[m] = seg_id
            area = int(m.sum())
            bbox = mask_bbox(m)
            instances_anns.append(dict(
                id=ann_id, image_id=image_id,
                category_id=CATEGORY_IDS[obj['name']],
                segmentation=mask_to_polygons(obj['mask']),
                area=float(area), bbox=bbox, iscrowd=0))
            ann_id += 1
            segments.append(dict(id=seg_id,
                                 category_id=CATEGORY_IDS[obj['name']],
                                 area=area, bbox=bbox, iscrowd=0))
        for j, name in enumerate(STUFF_CLASSES):
            label = CLASSES.index(name)
            m = (semantic == label)
            if not m.any():
                continue
            seg_id = len(objects) + 1 + j
            pan_ids[m] = seg_id
            segments.append(dict(id=seg_id, category_id=CATEGORY_IDS[name],
                                 area=int(m.sum()), bbox=mask_bbox(m),
                                 iscrowd=0))
        _write_png(osp.join(sem_dir, file_name), semantic)
        _write_png(osp.join(pan_dir, file_name),
                   _id_to_rgb(pan_ids)[..., ::-1])
        panoptic_anns.append(dict(image_id=image_id, file_name=file_name,
                                  segments_info=segments))

    info = dict(description=f'mmctx synthetic shapes ({split})',
                version=str(GENERATOR_VERSION))
    with open(inst_json, 'w') as f:
        json.dump(dict(info=info, images=images, annotations=instances_anns,
                       categories=_categories(False)), f)
    with open(pan_json, 'w') as f:
        json.dump(dict(info=info, images=images, annotations=panoptic_anns,
                       categories=_categories(True)), f)


def make_shapes(out_dir, num_train=200, num_val=50, img_size=128, seed=0,
                force=False):
    """Write the data set to ``out_dir`` (see the module docstring).

    A second call with the same arguments finds ``meta.json`` and returns at
    once unless ``force``. Returns ``out_dir``.
    """
    if img_size < 32:
        raise ValueError(f'img_size must be >= 32, got {img_size}')
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be >= 1, got '
                         f'{num_train} and {num_val}')
    meta = dict(version=GENERATOR_VERSION, num_train=num_train,
                num_val=num_val, img_size=img_size, seed=seed,
                classes=list(CLASSES), thing_classes=list(THING_CLASSES),
                stuff_classes=list(STUFF_CLASSES))
    meta_path = osp.join(out_dir, 'meta.json')
    if not force and osp.isfile(meta_path):
        with open(meta_path) as f:
            if json.load(f) == meta:
                return out_dir
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    if osp.isfile(meta_path):
        os.remove(meta_path)
    write_split(out_dir, 'train', num_train, img_size, seed)
    write_split(out_dir, 'val', num_val, img_size, seed)
    with open(meta_path, 'w') as f:  # written last: marks a complete set
        json.dump(meta, f, indent=2)
    return out_dir


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/shapes',
                   help='output directory; the train and val splits in it '
                   '(images/<split>, semantic/<split>, '
                   'annotations/panoptic_<split>, the split\'s json files) are '
                   'replaced')
    p.add_argument('--num-train', type=int, default=200)
    p.add_argument('--num-val', type=int, default=50)
    p.add_argument('--img-size', type=int, default=128)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--force', action='store_true',
                   help='regenerate even if meta.json matches')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    make_shapes(args.out, args.num_train, args.num_val, args.img_size,
                args.seed, force=args.force)
    print(f'shapes data set in {args.out}: {args.num_train} train / '
          f'{args.num_val} val images of {args.img_size}px, classes '
          f'{", ".join(CLASSES)}')


if __name__ == '__main__':
    main()
