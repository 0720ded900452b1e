"""Generate the "key" scenes of mmctx's context benchmark: the class of every
object is decided by evidence far away from it.

Every object of a scene is drawn alike - the same shape (a disc) with a grey
level, size and position drawn independently of its class - so that nothing
inside an object or near it tells its class. A small coloured square, the
*key*, sits in one corner of the image; its colour (red, green or blue) is
the class of *every* object of the scene. Objects are placed so that each of
their pixels is more than ``--min-key-distance`` pixels (Chebyshev distance)
from every pixel of the key: a network whose receptive field is narrower than
twice that distance cannot see the key from any object pixel, and must guess
the class (chance: 1 / 3). A network with long-range context reads it.

``--oracle`` draws, in addition, a small copy of the key touching each object
(its top-left corner): the same labels, but the cue is local, so a network
without context solves it. The benchmark uses it as its ceiling.

The output layout (``DIR`` = ``--out``), as tools/dataset_converters/make_shapes.py::

    images/{train,val}/000001.png                  RGB scenes
    annotations/instances_{train,val}.json         COCO instances (bbox + polygons)
    semantic/{train,val}/000001.png                uint8 label maps: 0 background,
                                                   1 + index in CLASSES for objects
    meta.json                                      generator arguments

Deterministic: scene ``i`` of a split depends only on the arguments, the
split and ``i``.

Usage::

    python tools/dataset_converters/make_context_shapes.py --out data/context_key \
        --num-train 400 --num-val 100 --img-size 96 --min-key-distance 36 --seed=0
"""
import argparse
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from make_shapes import (_smooth_noise, _write_png, mask_bbox,  # noqa: E402
                         mask_to_polygons)

#: object classes, named by the colour of the key that decides them
CLASSES = ('red', 'green', 'blue')
#: semantic label maps: 0 is the background, object class k is k + 1
SEG_CLASSES = ('background', ) + CLASSES
KEY_COLOURS = ((230, 30, 30), (30, 200, 30), (40, 60, 230))
SEG_PALETTE = [(0, 0, 0)] + [list(c) for c in KEY_COLOURS]
SPLIT_CODES = {'train': 0, 'val': 1}
GENERATOR_VERSION = 1
KEY_SIZE = 12
ORACLE_KEY_SIZE = 6
OBJECT_SIZE = (14, 30)  # disc diameter range, px
NUM_OBJECTS = (2, 5)


def _disc(center, diameter, img_size):
    mask = np.zeros((img_size, img_size), np.uint8)
    cv2.circle(mask, (int(round(center[0])), int(round(center[1]))),
               int(round(diameter / 2)), 1, -1, lineType=cv2.LINE_8)
    return mask


def _chebyshev_distance(box, xs, ys):
    """Chebyshev distance between a box (x0, y0, x1, y1; pixels x0..x1-1) and
    the pixels at ``xs``, ``ys`` (arrays or scalars): the smallest
    max(|dx|, |dy|) over pixel pairs."""
    x0, y0, x1, y1 = box
    dx = np.maximum(np.maximum(x0 - xs, xs - (x1 - 1)), 0)
    dy = np.maximum(np.maximum(y0 - ys, ys - (y1 - 1)), 0)
    return int(np.maximum(dx, dy).min())


def make_scene(rng, img_size, min_key_distance, oracle=False):
    """One scene: (RGB uint8 image, [object masks], class index, key box).

    Raises ``ValueError`` when the image is too small to hold one object at
    ``min_key_distance`` from the key.
    """
    s = img_size
    img = np.empty((s, s, 3), np.float32)
    base = rng.uniform(90, 170)
    img[:] = base + _smooth_noise(rng, s, 5)[..., None] * rng.uniform(10, 30)
    label = int(rng.integers(len(CLASSES)))

    # the key: a square in a random corner, a few pixels in from the border
    corner = rng.integers(2, size=2)
    inset = rng.integers(2, 8, size=2)
    kx = inset[0] if corner[0] == 0 else s - inset[0] - KEY_SIZE
    ky = inset[1] if corner[1] == 0 else s - inset[1] - KEY_SIZE
    key_box = (int(kx), int(ky), int(kx) + KEY_SIZE, int(ky) + KEY_SIZE)

    owner = np.zeros((s, s), bool)
    masks = []
    want = int(rng.integers(NUM_OBJECTS[0], NUM_OBJECTS[1] + 1))
    for _ in range(200):
        if len(masks) == want:
            break
        d = rng.uniform(*OBJECT_SIZE)
        margin = d / 2 + ORACLE_KEY_SIZE + 1
        center = rng.uniform(margin, s - margin, 2)
        # the centre pixel lies in the disc (radius >= 7): a centre this near
        # the key is refused without drawing the disc (same scenes, fewer steps)
        cx, cy = int(round(center[0])), int(round(center[1]))
        if _chebyshev_distance(key_box, cx, cy) <= min_key_distance:
            continue
        m = _disc(center, d, s)
        # apart from the key, from the other objects and their oracle keys
        grown = cv2.dilate(m, np.ones((2 * ORACLE_KEY_SIZE + 3, ) * 2, np.uint8))
        if (_chebyshev_distance(key_box, *np.nonzero(m)[::-1]) <= min_key_distance
                or (grown.astype(bool) & owner).any()):
            continue
        owner |= grown.astype(bool)
        masks.append(m)
    if not masks:
        raise ValueError(f'img_size {img_size} leaves no room for an object more than '
                         f'{min_key_distance} px from the key')

    for m in masks:
        # contrast with the background: 35-80 grey levels darker or brighter
        grey = np.clip(base + rng.choice((-1, 1)) * rng.uniform(35, 80), 0, 255)
        sel = m.astype(bool)
        img[sel] = grey + rng.normal(0, 6, size=(int(sel.sum()), 1))
    colour = np.array(KEY_COLOURS[label], np.float32)
    x0, y0, x1, y1 = key_box
    img[y0:y1, x0:x1] = colour
    if oracle:
        for m in masks:
            bx, by, _, _ = mask_bbox(m)
            ox, oy = int(bx) - ORACLE_KEY_SIZE, int(by) - ORACLE_KEY_SIZE
            img[max(oy, 0):oy + ORACLE_KEY_SIZE, max(ox, 0):ox + ORACLE_KEY_SIZE] = colour
    img += rng.normal(0, 4, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), masks, label, key_box


def write_split(out_dir, split, num_images, img_size, min_key_distance, seed, oracle):
    img_dir = osp.join(out_dir, 'images', split)
    sem_dir = osp.join(out_dir, 'semantic', split)
    for d in (img_dir, sem_dir):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):  # files of an earlier, larger run
            os.remove(osp.join(d, name))
    images, anns = [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, SPLIT_CODES[split], i])
        img, masks, label, _ = make_scene(rng, img_size, min_key_distance, oracle)
        file_name = f'{i + 1:06d}.png'
        images.append(dict(id=i + 1, file_name=file_name, height=img_size, width=img_size))
        _write_png(osp.join(img_dir, file_name), img[..., ::-1])
        semantic = np.zeros((img_size, img_size), np.uint8)
        for m in masks:
            semantic[m > 0] = label + 1
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=label + 1,
                             segmentation=mask_to_polygons(m), area=float(m.sum()),
                             bbox=mask_bbox(m), iscrowd=0))
        _write_png(osp.join(sem_dir, file_name), semantic)
    categories = [dict(id=k + 1, name=n, supercategory='key') for k, n in enumerate(CLASSES)]
    with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(dict(info=dict(description=f'mmctx context key scenes ({split})'),
                       images=images, annotations=anns, categories=categories), f)


def make_context_shapes(out_dir, num_train=400, num_val=100, img_size=96,
                        min_key_distance=36, seed=0, oracle=False, force=False):
    """Write the data set to ``out_dir`` (see the module docstring); a second
    call with the same arguments returns at once unless ``force``."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train} and {num_val}')
    if min_key_distance < 0:
        raise ValueError(f'min_key_distance must be >= 0, got {min_key_distance}')
    meta = dict(version=GENERATOR_VERSION, num_train=num_train, num_val=num_val,
                img_size=img_size, min_key_distance=min_key_distance, seed=seed,
                oracle=bool(oracle), classes=list(CLASSES))
    meta_path = osp.join(out_dir, 'meta.json')
    if not force and osp.isfile(meta_path):
        with open(meta_path) as f:
            if json.load(f) == meta:
                return out_dir
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    if osp.isfile(meta_path):
        os.remove(meta_path)
    write_split(out_dir, 'train', num_train, img_size, min_key_distance, seed, oracle)
    write_split(out_dir, 'val', num_val, img_size, min_key_distance, seed, oracle)
    with open(meta_path, 'w') as f:  # written last: marks a complete set
        json.dump(meta, f, indent=2)
    return out_dir


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/context_key')
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-val', type=int, default=100)
    p.add_argument('--img-size', type=int, default=96)
    p.add_argument('--min-key-distance', type=int, default=36,
                   help='every object pixel is farther than this from the key (Chebyshev, px)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--oracle', action='store_true',
                   help='also draw a copy of the key touching each object (the ceiling)')
    p.add_argument('--force', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    make_context_shapes(args.out, args.num_train, args.num_val, args.img_size,
                        args.min_key_distance, args.seed, args.oracle, args.force)
    print(f'context key scenes in {args.out}: {args.num_train} train / {args.num_val} val '
          f'images of {args.img_size}px{" (oracle keys)" if args.oracle else ""}')


if __name__ == '__main__':
    main()
