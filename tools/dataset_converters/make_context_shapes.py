"""Generate the scenes of mmctx's context benchmark: the class of an object is
decided by evidence far away from it.

``--scenes key`` (the default): every object of a scene is drawn alike - the
same shape (a disc) with a grey level, size and position drawn independently
of its class - so that nothing inside an object or near it tells its class. A
small coloured square, the *key*, sits in one corner of the image; its colour
(red, green or blue) is the class of *every* object of the scene. Objects are
placed so that each of their pixels is more than ``--min-key-distance``
pixels (Chebyshev distance) from every pixel of the key: a network whose
receptive field is narrower than twice that distance cannot see the key from
any object pixel, and must guess the class (chance: 1 / 3). A network with
long-range context reads it.

``--scenes twins`` (Yuan et al.'s object context: a pixel's label is its
object's, whose like it finds elsewhere in the image): two *exemplars*, a disc
and a square (12-16 px), each filled with the colour of its class (two of the
three classes, drawn per scene), sit at the two corners of one edge; 2-3 grey
*twins* (12-20 px), each a disc or a square, at least one of each, share the
class of the exemplar of their shape. Which shape goes with which class is
drawn per scene, so a twin alone says nothing of its class (chance 1 / 3);
every twin pixel is more than ``--min-key-distance`` px from both exemplars.
Exemplars and twins are labelled; the twins are the scene's context-
dependent objects. Unlike the key, the evidence differs per object: a twin
must find the exemplar that looks like it, which one pooled context vector
for the whole image (Cao et al.'s query-independent global context) does not
hold without also encoding which shape goes with which colour.

``--oracle`` draws, in addition, a small square of the object's key colour
touching each context-dependent object (its top-left corner): the same
labels, but the cue is local, so a network without context solves it. The
benchmark uses it as its ceiling.

The output layout (``DIR`` = ``--out``), as tools/dataset_converters/make_shapes.py::

    images/{train,val}/000001.png                  RGB scenes
    annotations/instances_{train,val}.json         COCO instances (bbox + polygons)
    semantic/{train,val}/000001.png                uint8 label maps: 0 background,
                                                   1 + index in CLASSES for objects
    context/{train,val}/000001.png                 uint8: 1 on the pixels of the
                                                   objects only far evidence decides
                                                   (every object of a key scene, the
                                                   twins of a twins scene), else 0
    meta.json                                      generator arguments

Deterministic: scene ``i`` of a split depends only on the arguments, the
split and ``i``.

Usage::

    python tools/dataset_converters/make_context_shapes.py --out data/context_key \
        --num-train 400 --num-val 100 --img-size 96 --min-key-distance 36 --seed=0
    python tools/dataset_converters/make_context_shapes.py --scenes twins --out data/context_twins
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, NamedTuple

import cv2
import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from make_shapes import (_smooth_noise, _write_png, mask_bbox,  # noqa: E402
                         mask_to_polygons, shape_mask)

#: object classes, named by the colour of the key that decides them
CLASSES = ('red', 'green', 'blue')
#: semantic label maps: 0 is the background, object class k is k + 1
SEG_CLASSES = ('background', ) + CLASSES
KEY_COLOURS = ((230, 30, 30), (30, 200, 30), (40, 60, 230))
SEG_PALETTE = [(0, 0, 0)] + [list(c) for c in KEY_COLOURS]
SPLIT_CODES = {'train': 0, 'val': 1}
#: 2: the context maps, the annotations' ``context`` flag and the twins scenes
#: (the key scenes' pixels and labels are those of version 1)
GENERATOR_VERSION = 2
KEY_SIZE = 12
ORACLE_KEY_SIZE = 6
OBJECT_SIZE = (14, 30)  # key scenes: disc diameter range, px
NUM_OBJECTS = (2, 5)
#: twins scenes: the two shapes, the exemplars' and the twins' diameters (px;
#: a square has the area of the disc of that diameter) and the twins' number
SHAPES = ('disc', 'square')
EXEMPLAR_SIZE = (12, 16)
TWIN_SIZE = (12, 20)
NUM_TWINS = (2, 3)


class Scene(NamedTuple):
    """One generated scene."""
    image: np.ndarray  # (H, W, 3) uint8 RGB
    masks: List[np.ndarray]  # one (H, W) uint8 mask per object
    labels: List[int]  # each object's class index in CLASSES
    context: List[bool]  # whether only far evidence decides the object's class
    cues: List[tuple]  # the boxes (x0, y0, x1, y1) of the far evidence: key or exemplars


def _shape_mask(shape, center, diameter, img_size):
    """A filled disc of ``diameter`` (make_shapes.py's circle) or an
    axis-aligned square of the same area (side ``diameter * sqrt(pi) / 2``)
    centred at ``center``."""
    if shape == 'disc':
        return shape_mask('circle', center, diameter, 0.0, img_size)
    if shape != 'square':
        raise ValueError(f'unknown shape {shape!r}; expected one of {SHAPES}')
    mask = np.zeros((img_size, img_size), np.uint8)
    side = int(round(diameter * np.sqrt(np.pi) / 2))
    x0, y0 = int(round(center[0] - side / 2)), int(round(center[1] - side / 2))
    mask[max(y0, 0):y0 + side, max(x0, 0):x0 + side] = 1
    return mask


def _halo(mask):
    """The pixels within an oracle key's width (and a margin) of ``mask``:
    what keeps objects apart and room for their oracle keys."""
    return cv2.dilate(mask, np.ones((2 * ORACLE_KEY_SIZE + 3, ) * 2, np.uint8)).astype(bool)


def _chebyshev_distance(box, xs, ys):
    """Chebyshev distance between a box (x0, y0, x1, y1; pixels x0..x1-1) and
    the pixels at ``xs``, ``ys`` (arrays or scalars): the smallest
    max(|dx|, |dy|) over pixel pairs."""
    x0, y0, x1, y1 = box
    dx = np.maximum(np.maximum(x0 - xs, xs - (x1 - 1)), 0)
    dy = np.maximum(np.maximum(y0 - ys, ys - (y1 - 1)), 0)
    return int(np.maximum(dx, dy).min())


def _box(mask):
    """(x0, y0, x1, y1) of a mask's pixels."""
    x, y, w, h = mask_bbox(mask)
    return int(x), int(y), int(x + w), int(y + h)


def _background(rng, img_size):
    """A float image of smooth grey noise and its mean grey level."""
    img = np.empty((img_size, img_size, 3), np.float32)
    base = rng.uniform(90, 170)
    img[:] = base + _smooth_noise(rng, img_size, 5)[..., None] * rng.uniform(10, 30)
    return img, base


def _place(rng, img_size, shapes, size_range, cues, min_distance, owner):
    """Objects of ``shapes`` (in order; 200 tries in all), each pixel farther
    than ``min_distance`` from every box of ``cues``, apart from ``owner`` and
    from each other by an oracle key's width (``owner`` grows with them).
    Returns their masks: as many as found room."""
    masks = []
    for _ in range(200):
        if len(masks) == len(shapes):
            break
        d = rng.uniform(*size_range)
        margin = d / 2 + ORACLE_KEY_SIZE + 1
        center = rng.uniform(margin, img_size - margin, 2)
        # the centre pixel lies in the object (radius >= 6): a centre this near
        # a cue is refused without drawing the object (same scenes, fewer steps)
        cx, cy = int(round(center[0])), int(round(center[1]))
        if any(_chebyshev_distance(box, cx, cy) <= min_distance for box in cues):
            continue
        m = _shape_mask(shapes[len(masks)], center, d, img_size)
        halo = _halo(m)
        xs, ys = np.nonzero(m)[::-1]
        if (any(_chebyshev_distance(box, xs, ys) <= min_distance for box in cues)
                or (halo & owner).any()):
            continue
        owner |= halo
        masks.append(m)
    return masks


def _paint_grey(rng, img, base, masks):
    """Each object a grey 35-80 levels darker or brighter than the background,
    with pixel noise: nothing in it tells its class."""
    for m in masks:
        grey = np.clip(base + rng.choice((-1, 1)) * rng.uniform(35, 80), 0, 255)
        sel = m.astype(bool)
        img[sel] = grey + rng.normal(0, 6, size=(int(sel.sum()), 1))


def _paint_oracle_keys(img, masks, labels):
    """A small square of each object's key colour touching its top-left corner."""
    for m, label in zip(masks, labels):
        bx, by, _, _ = _box(m)
        ox, oy = bx - ORACLE_KEY_SIZE, by - ORACLE_KEY_SIZE
        img[max(oy, 0):oy + ORACLE_KEY_SIZE, max(ox, 0):ox + ORACLE_KEY_SIZE] = KEY_COLOURS[label]


def _finish(rng, img):
    img += rng.normal(0, 4, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_key_scene(rng, img_size, min_key_distance, oracle=False):
    """One key scene (module docstring): grey discs, every one of the class
    of the key, a coloured square in a random corner. Raises ``ValueError``
    when the image is too small to hold one object at ``min_key_distance``
    from the key."""
    s = img_size
    img, base = _background(rng, s)
    label = int(rng.integers(len(CLASSES)))

    # the key: a square in a random corner, a few pixels in from the border
    corner = rng.integers(2, size=2)
    inset = rng.integers(2, 8, size=2)
    kx = inset[0] if corner[0] == 0 else s - inset[0] - KEY_SIZE
    ky = inset[1] if corner[1] == 0 else s - inset[1] - KEY_SIZE
    key_box = (int(kx), int(ky), int(kx) + KEY_SIZE, int(ky) + KEY_SIZE)

    want = int(rng.integers(NUM_OBJECTS[0], NUM_OBJECTS[1] + 1))
    masks = _place(rng, s, ('disc', ) * want, OBJECT_SIZE, [key_box], min_key_distance,
                   np.zeros((s, s), bool))
    if not masks:
        raise ValueError(f'img_size {img_size} leaves no room for an object more than '
                         f'{min_key_distance} px from the key')
    _paint_grey(rng, img, base, masks)
    x0, y0, x1, y1 = key_box
    img[y0:y1, x0:x1] = KEY_COLOURS[label]
    labels = [label] * len(masks)
    if oracle:
        _paint_oracle_keys(img, masks, labels)
    return Scene(_finish(rng, img), masks, labels, [True] * len(masks), [key_box])


def make_twins_scene(rng, img_size, min_key_distance, oracle=False):
    """One twins scene (module docstring): two exemplars in the key colours
    of two classes, a disc and a square, at the two corners of one edge; 2-3
    grey twins, each the shape of one exemplar and of its class, every twin
    pixel farther than ``min_key_distance`` from both exemplars. Raises
    ``ValueError`` when the image leaves no room for a twin."""
    s = img_size
    img, base = _background(rng, s)
    labels = [int(c) for c in rng.choice(len(CLASSES), 2, replace=False)]
    shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))]  # group g: labels[g], shapes[g]

    # the exemplars: the two corners of a random edge (top, bottom, left, right)
    edge = int(rng.integers(4))
    corners = (((0, 0), (1, 0)), ((0, 1), (1, 1)), ((0, 0), (0, 1)), ((1, 0), (1, 1)))[edge]
    owner = np.zeros((s, s), bool)
    exemplars = []
    for (right, bottom), shape in zip(corners, shapes):
        d = rng.uniform(*EXEMPLAR_SIZE)
        inset = rng.integers(2, 6, size=2)
        x0 = inset[0] if right == 0 else s - inset[0] - d
        y0 = inset[1] if bottom == 0 else s - inset[1] - d
        m = _shape_mask(shape, (x0 + d / 2, y0 + d / 2), d, s)
        owner |= _halo(m)
        exemplars.append(m)
    cues = [_box(m) for m in exemplars]

    want = int(rng.integers(NUM_TWINS[0], NUM_TWINS[1] + 1))
    # a twin of each exemplar first, then each further twin's exemplar at random
    groups = [int(g) for g in rng.permutation(2)] + [
        int(g) for g in rng.integers(2, size=want - 2)]
    twins = _place(rng, s, [shapes[g] for g in groups], TWIN_SIZE, cues, min_key_distance,
                   owner)
    if not twins:
        raise ValueError(f'img_size {img_size} leaves no room for a twin more than '
                         f'{min_key_distance} px from the exemplars')
    groups = groups[:len(twins)]
    _paint_grey(rng, img, base, twins)
    for m, label in zip(exemplars, labels):
        sel = m.astype(bool)
        img[sel] = np.array(KEY_COLOURS[label]) + rng.normal(0, 6, size=(int(sel.sum()), 1))
    twin_labels = [labels[g] for g in groups]
    if oracle:
        _paint_oracle_keys(img, twins, twin_labels)
    return Scene(_finish(rng, img), exemplars + twins, labels + twin_labels,
                 [False] * 2 + [True] * len(twins), cues)


#: the scene generators by ``--scenes``
SCENES = {'key': make_key_scene, 'twins': make_twins_scene}


def write_split(out_dir, split, num_images, img_size, min_key_distance, seed, oracle,
                scenes='key'):
    img_dir = osp.join(out_dir, 'images', split)
    sem_dir = osp.join(out_dir, 'semantic', split)
    ctx_dir = osp.join(out_dir, 'context', split)
    for d in (img_dir, sem_dir, ctx_dir):
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):  # files of an earlier, larger run
            os.remove(osp.join(d, name))
    images, anns = [], []
    for i in range(num_images):
        rng = np.random.default_rng([seed, SPLIT_CODES[split], i])
        scene = SCENES[scenes](rng, img_size, min_key_distance, oracle)
        file_name = f'{i + 1:06d}.png'
        images.append(dict(id=i + 1, file_name=file_name, height=img_size, width=img_size))
        _write_png(osp.join(img_dir, file_name), scene.image[..., ::-1])
        semantic = np.zeros((img_size, img_size), np.uint8)
        context = np.zeros((img_size, img_size), np.uint8)
        for m, label, far in zip(scene.masks, scene.labels, scene.context):
            semantic[m > 0] = label + 1
            context[m > 0] = int(far)
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=label + 1,
                             segmentation=mask_to_polygons(m), area=float(m.sum()),
                             bbox=mask_bbox(m), iscrowd=0, context=bool(far)))
        _write_png(osp.join(sem_dir, file_name), semantic)
        _write_png(osp.join(ctx_dir, file_name), context)
    categories = [dict(id=k + 1, name=n, supercategory='key') for k, n in enumerate(CLASSES)]
    with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(dict(info=dict(description=f'mmctx context {scenes} scenes ({split})'),
                       images=images, annotations=anns, categories=categories), f)


def make_context_shapes(out_dir, num_train=400, num_val=100, img_size=96,
                        min_key_distance=36, seed=0, oracle=False, force=False,
                        scenes='key'):
    """Write the data set to ``out_dir`` (see the module docstring); a second
    call with the same arguments returns at once unless ``force``."""
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train} and {num_val}')
    if min_key_distance < 0:
        raise ValueError(f'min_key_distance must be >= 0, got {min_key_distance}')
    if scenes not in SCENES:
        raise ValueError(f'scenes must be one of {sorted(SCENES)}, got {scenes!r}')
    meta = dict(version=GENERATOR_VERSION, num_train=num_train, num_val=num_val,
                img_size=img_size, min_key_distance=min_key_distance, seed=seed,
                oracle=bool(oracle), classes=list(CLASSES), scenes=scenes)
    meta_path = osp.join(out_dir, 'meta.json')
    if not force and osp.isfile(meta_path):
        with open(meta_path) as f:
            if json.load(f) == meta:
                return out_dir
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    if osp.isfile(meta_path):
        os.remove(meta_path)
    for split, num in (('train', num_train), ('val', num_val)):
        write_split(out_dir, split, num, img_size, min_key_distance, seed, oracle, scenes)
    with open(meta_path, 'w') as f:  # written last: marks a complete set
        json.dump(meta, f, indent=2)
    return out_dir


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--scenes', choices=sorted(SCENES), default='key',
                   help='key: a coloured key decides every object; twins: each grey twin '
                        'takes the class of the coloured exemplar of its shape')
    p.add_argument('--out', default='data/context_key')
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-val', type=int, default=100)
    p.add_argument('--img-size', type=int, default=96)
    p.add_argument('--min-key-distance', type=int, default=36,
                   help='every context-dependent object pixel is farther than this from '
                        'the key or the exemplars (Chebyshev, px)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--oracle', action='store_true',
                   help='also draw a square of its key colour touching each context-'
                        'dependent object (the ceiling)')
    p.add_argument('--force', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    make_context_shapes(args.out, args.num_train, args.num_val, args.img_size,
                        args.min_key_distance, args.seed, args.oracle, args.force, args.scenes)
    print(f'context {args.scenes} scenes in {args.out}: {args.num_train} train / '
          f'{args.num_val} val images of {args.img_size}px'
          f'{" (oracle keys)" if args.oracle else ""}')


if __name__ == '__main__':
    main()
