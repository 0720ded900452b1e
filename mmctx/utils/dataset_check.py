"""Check the data sets of a config before training; say loudly what is wrong.

mmdet and mmseg read annotations leniently: a class name of ``metainfo`` that
is not a category of the COCO json drops that class's annotations, boxes of
zero area, negative size or an unknown ``category_id`` are skipped, a
missing or empty image fails only when the loader reaches it (and cv2's error
names no file), and a semantic label out of range crashes the loss (or is
ignored by the metrics) without naming the label map. This module reads the
annotation files itself - not through the data set classes, whose filtering
would hide what it drops - and reports, for every dataloader data set of a
config:

* every referenced image (and label / panoptic map) exists and reads, with
  the offending files named;
* the class names of ``metainfo`` are categories of the annotation file
  (missing or misspelt ones named, with close matches from ``difflib``);
* the annotations that are dropped or invalid, counted per reason (zero
  area, negative or zero width / height, unknown ``category_id`` or
  ``image_id``, outside or past the border of the image, polygons of fewer
  than 3 points); more than ``max_invalid_ratio`` of them is an error;
* semantic label values are in ``[0, num_classes)`` or ``ignore_index``
  after ``reduce_zero_label`` and the class ``label_map`` (files and values
  named);
* a training set that filtering would leave empty, or a json without images,
  is an error naming the json.

Supported: mmdet ``CocoDataset`` and its subclasses, ``CocoPanopticDataset``,
mmseg ``BaseSegDataset`` and its subclasses, inside any wrapper that holds
``dataset`` / ``datasets`` (``RepeatDataset``, ``ConcatDataset``, ...).
Other data set types are reported as not checked.

Two modes:

* ``'fast'`` (the default before training, :func:`check_before_training`):
  images are checked for existence, a non-zero size and a readable header
  whose width / height match the annotation; label maps (small single-channel
  PNGs) are decoded, since their values are the check; panoptic maps are
  checked like images.
* ``'full'`` (the default of ``tools/misc/check_dataset.py``): every image and
  map is decoded as the pipeline decodes it (``mmcv.imfrombytes``), and the
  segment ids of panoptic maps are compared with ``segments_info``.

Before training the check is configured by a top-level config key::

    data_check = dict(skip=False, mode='fast', max_invalid_ratio=0.01)

(``--cfg-options data_check.skip=True`` turns it off for one run).
"""
import copy
import difflib
import inspect
import io
import json
import os
import os.path as osp
import sys
from collections import Counter
from dataclasses import dataclass, field
from importlib import import_module
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .scope import task_scope

CONFIG_KEY = 'data_check'
MODES = ('fast', 'full')
SPLITS = ('train', 'val', 'test')
DEFAULT_MAX_INVALID_RATIO = 0.01
# Files named in one message; the rest are counted.
MAX_EXAMPLES = 5

# Reasons an annotation is dropped or wrong. Those of INVALID_REASONS count
# towards ``max_invalid_ratio``; 'category not in classes' is a deliberate
# choice of the config (a subset of the categories) and is only reported.
MALFORMED = 'malformed bbox'
UNKNOWN_IMAGE = 'unknown image_id'
UNKNOWN_CATEGORY = 'unknown category_id'
NEGATIVE_SIZE = 'negative width/height'
ZERO_SIZE = 'width/height < 1 px'
ZERO_AREA = 'area <= 0'
OUTSIDE = 'outside the image'
PAST_BORDER = 'past the image border by > 1 px'
BAD_POLYGON = 'polygon with < 3 points'
EMPTY_SEGMENT = 'segment with no pixels'
INVALID_REASONS = (MALFORMED, UNKNOWN_IMAGE, UNKNOWN_CATEGORY, NEGATIVE_SIZE,
                   ZERO_SIZE, ZERO_AREA, OUTSIDE, PAST_BORDER, BAD_POLYGON,
                   EMPTY_SEGMENT)
NOT_IN_CLASSES = 'category not in classes'


class DatasetCheckError(ValueError):
    """A data set of the config has errors; the message lists all of them."""


@dataclass
class DatasetReport:
    """What the check found in one data set.

    ``invalid`` counts annotations per reason of ``INVALID_REASONS``,
    ``unused`` the annotations the config leaves out on purpose;
    ``examples`` keeps a few offending annotations / files per reason.
    """
    split: str
    dataset_type: str
    source: str
    num_images: int = 0
    num_annotations: int = 0
    num_kept_images: Optional[int] = None
    invalid: Counter = field(default_factory=Counter)
    unused: Counter = field(default_factory=Counter)
    examples: Dict[str, List[str]] = field(default_factory=dict)
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    checked: bool = True

    @property
    def title(self) -> str:
        return f'[{self.split}] {self.dataset_type} {self.source}'

    def count(self, reason: str, example: str, invalid: bool = True) -> None:
        (self.invalid if invalid else self.unused)[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(example)

    def summary(self) -> str:
        """A few lines: sizes, then one line per reason with examples."""
        if not self.checked:
            return f'{self.title}: not checked ({self.warnings[0]})'
        lines = [f'{self.title}: {self.num_images} images, '
                 f'{self.num_annotations} annotations']
        if self.num_kept_images is not None:
            lines[0] += (f', {self.num_kept_images} images left after '
                         'filter_cfg')
        for counter, kind in ((self.invalid, 'invalid'),
                              (self.unused, 'unused')):
            for reason, n in sorted(counter.items()):
                lines.append(f'  {kind}: {reason}: {n} (e.g. '
                             + '; '.join(self.examples[reason]) + ')')
        lines += [f'  warning: {w}' for w in self.warnings]
        lines += [f'  ERROR: {e}' for e in self.errors]
        return '\n'.join(lines)


# --------------------------------------------------------------------------
# Config side: which data sets, of which class, with which arguments
# --------------------------------------------------------------------------
def _leaf_datasets(ds_cfg) -> List[dict]:
    """The data sets inside wrappers (``dataset=`` / ``datasets=[...]``)."""
    if isinstance(ds_cfg.get('datasets'), (list, tuple)):
        return [leaf for d in ds_cfg['datasets'] for leaf in _leaf_datasets(d)]
    if isinstance(ds_cfg.get('dataset'), dict):
        return _leaf_datasets(ds_cfg['dataset'])
    return [ds_cfg]


def config_datasets(cfg, splits: Sequence[str] = SPLITS
                    ) -> List[Tuple[str, dict]]:
    """``(split, dataset config)`` of each dataloader of ``splits``.

    A data set shared by several splits (``test_dataloader =
    val_dataloader``) is listed once, as ``'val/test'``.
    """
    found: List[Tuple[List[str], dict]] = []
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            continue
        for leaf in _leaf_datasets(loader['dataset']):
            for names, other in found:
                if other == leaf:
                    if split not in names:
                        names.append(split)
                    break
            else:
                found.append(([split], leaf))
    return [('/'.join(names), leaf) for names, leaf in found]


def dataset_class(type_, scope: str):
    """The class of a data set ``type`` in the registry of ``scope``.

    None when the type is not registered (the runner then names it).
    """
    if isinstance(type_, type):
        return type_
    registry = import_module(f'{scope}.registry').DATASETS
    try:
        return registry.get(type_)
    except (KeyError, ImportError):  # e.g. an unknown 'scope.' prefix
        return None


def _init_default(cls, name: str, default=None):
    """Default of ``__init__`` argument ``name`` along the MRO of ``cls``."""
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not inspect.Parameter.empty:
            return copy.deepcopy(param.default)
    return default


def _arg(ds_cfg, cls, name: str, default=None):
    if name in ds_cfg:
        return copy.deepcopy(ds_cfg[name])
    return _init_default(cls, name, default)


def _join(root, path):
    """``data_root`` joined with a relative path, as mmengine's datasets do."""
    if path is None or path == '':
        return path
    if root and not osp.isabs(path) and '://' not in path:
        return osp.join(root, path)
    return path


def _metainfo(ds_cfg, cls) -> dict:
    meta = copy.deepcopy(getattr(cls, 'METAINFO', {}) or {})
    given = ds_cfg.get('metainfo')
    if given is not None:
        if not isinstance(given, dict):
            raise DatasetCheckError(
                f'metainfo of {cls.__name__} must be a dict, got '
                f'{type(given).__name__}')
        meta.update(copy.deepcopy(dict(given)))
    return meta


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
class _Files:
    """Existence, header and decoding of image files (any mmengine backend)."""

    def __init__(self, backend_args: Optional[dict]):
        self.backend_args = backend_args

    def _local(self, path: str) -> bool:
        from mmengine.fileio import LocalBackend, get_file_backend
        return isinstance(
            get_file_backend(path, backend_args=self.backend_args),
            LocalBackend)

    def read(self, path: str) -> bytes:
        """All bytes of ``path``; ``OSError`` naming the problem."""
        from mmengine.fileio import get
        if self._local(path):
            if not osp.isfile(path):
                raise OSError('missing')
            if osp.getsize(path) == 0:
                raise OSError('empty file (0 bytes)')
            with open(path, 'rb') as f:
                return f.read()
        try:
            data = get(path, backend_args=self.backend_args)
        except FileNotFoundError:
            raise OSError('missing') from None
        if not data:
            raise OSError('empty file (0 bytes)')
        return data

    def header_size(self, path: str) -> Tuple[int, int]:
        """``(height, width)`` from the image header, without decoding."""
        from PIL import Image, UnidentifiedImageError
        if self._local(path):
            if not osp.isfile(path):
                raise OSError('missing')
            if osp.getsize(path) == 0:
                raise OSError('empty file (0 bytes)')
            source = path
        else:
            source = io.BytesIO(self.read(path))
        try:
            with Image.open(source) as im:
                width, height = im.size
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise OSError(f'not a readable image ({e})') from None
        return height, width

    def decode(self, path: str, flag: str = 'color') -> np.ndarray:
        """The decoded array, as mmcv's loading transforms decode it."""
        import mmcv
        data = self.read(path)
        try:
            img = mmcv.imfrombytes(data, flag=flag)
        except Exception as e:  # cv2.error names no file
            raise OSError(f'cannot be decoded ({type(e).__name__}: '
                          f'{str(e).strip()})') from None
        if img is None:
            raise OSError('cannot be decoded (not an image or truncated)')
        return img

    def size(self, path: str, mode: str) -> Tuple[int, int]:
        """``(height, width)``: from the header (fast) or by decoding (full)."""
        if mode == 'full':
            return tuple(self.decode(path).shape[:2])
        return self.header_size(path)


def _progress(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from mmengine.utils import ProgressBar
    return ProgressBar(total, file=sys.stdout)


def _file_problem(problems: Dict[str, List[str]], subject: str, path: str,
                  error: OSError) -> None:
    """File ``path`` under '<subject> are missing' or '... are unreadable'."""
    if str(error) == 'missing':
        problems.setdefault(f'{subject} are missing', []).append(path)
    else:
        problems.setdefault(f'{subject} are unreadable', []).append(
            f'{path}: {error}')


def _file_errors(report: DatasetReport,
                 problems: Dict[str, List[str]]) -> None:
    """One error per kind of file problem, naming the first files."""
    for problem, paths in problems.items():
        shown = ', '.join(paths[:MAX_EXAMPLES])
        more = (f' and {len(paths) - MAX_EXAMPLES} more'
                if len(paths) > MAX_EXAMPLES else '')
        report.errors.append(f'{len(paths)} {problem}: {shown}{more}')


def _ratio_error(report: DatasetReport, max_invalid_ratio: float,
                 library: str) -> None:
    bad = sum(report.invalid.values())
    if not bad:
        return
    total = max(report.num_annotations, 1)
    text = (f'{bad} of {report.num_annotations} annotations '
            f'({100 * bad / total:.2f}%) are invalid ('
            + ', '.join(f'{r}: {n}' for r, n in sorted(report.invalid.items()))
            + f'); {library} drops or mis-reads them')
    if bad / total > max_invalid_ratio:
        report.errors.append(f'{text}, more than max_invalid_ratio='
                             f'{max_invalid_ratio}')
    else:
        report.warnings.append(text)


# --------------------------------------------------------------------------
# COCO instances and panoptic (mmdet)
# --------------------------------------------------------------------------
def _load_json(path: str, backend_args, keys: Sequence[str]) -> dict:
    from mmengine.fileio import get_local_path
    try:
        with get_local_path(path, backend_args=backend_args) as local:
            with open(local) as f:
                data = json.load(f)
    except FileNotFoundError:
        raise DatasetCheckError(f'annotation file {path} does not exist') \
            from None
    except json.JSONDecodeError as e:
        raise DatasetCheckError(f'annotation file {path} is not valid JSON: '
                                f'{e}') from None
    if not isinstance(data, dict):
        raise DatasetCheckError(f'annotation file {path} holds a '
                                f'{type(data).__name__}, not a COCO dict')
    missing = [k for k in keys if k not in data]
    if missing:
        raise DatasetCheckError(f'annotation file {path} has no '
                                f'{", ".join(map(repr, missing))} list')
    return data


def _check_classes(report: DatasetReport, classes, categories: List[dict],
                   ann_file: str) -> Dict[int, dict]:
    """Class names of metainfo against the json's categories.

    Returns the json's categories by id.
    """
    cats = {}
    for cat in categories:
        if 'id' not in cat or 'name' not in cat:
            report.errors.append(f'{ann_file}: category {cat} has no id or '
                                 'no name')
            continue
        cats[cat['id']] = cat
    names = [c['name'] for c in cats.values()]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        report.errors.append(f'{ann_file}: category names {duplicated} are '
                             'used by several category ids')
    if not classes:
        report.errors.append(
            f'metainfo has no classes (set metainfo=dict(classes=(...))); '
            f'the categories of {ann_file} are {names}')
        return cats
    classes = list(classes)
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        report.errors.append(f'metainfo classes repeat {repeated}')
    for name in classes:
        if name in names:
            continue
        close = difflib.get_close_matches(str(name), [str(n) for n in names],
                                          n=3, cutoff=0.6)
        hint = (' (did you mean ' + ' or '.join(map(repr, close)) + '?)'
                if close else f' (its categories: {names})')
        report.errors.append(
            f'class {name!r} of metainfo is not a category of {ann_file}'
            f'{hint}; mmdet would silently drop its annotations')
    return cats


def _check_box(report: DatasetReport, ann: dict, img: dict,
               where: str) -> bool:
    """Count a box's problem; True when mmdet keeps the annotation."""
    bbox = ann.get('bbox')
    if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) for v in bbox)
            or not isinstance(ann.get('area'), (int, float))):
        report.count(MALFORMED, f'{where}: bbox {bbox}, area '
                     f'{ann.get("area")}')
        return False
    x, y, w, h = bbox
    if w < 0 or h < 0:
        report.count(NEGATIVE_SIZE, f'{where}: bbox {bbox}')
        return False
    if w < 1 or h < 1:
        report.count(ZERO_SIZE, f'{where}: bbox {bbox}')
        return False
    if ann['area'] <= 0:
        report.count(ZERO_AREA, f'{where}: area {ann["area"]}')
        return False
    img_w, img_h = img['width'], img['height']
    inter_w = max(0, min(x + w, img_w) - max(x, 0))
    inter_h = max(0, min(y + h, img_h) - max(y, 0))
    if inter_w * inter_h == 0:
        report.count(OUTSIDE, f'{where}: bbox {bbox} in a {img_w}x{img_h} '
                     'image')
        return False
    if x < -1 or y < -1 or x + w > img_w + 1 or y + h > img_h + 1:
        # kept by mmdet, but a sign of a wrong box format (xyxy as xywh)
        report.count(PAST_BORDER, f'{where}: bbox {bbox} in a {img_w}x'
                     f'{img_h} image')
    return True


def _check_images(report: DatasetReport, images: List[dict], img_dir: str,
                  files: _Files, mode: str, progress: bool,
                  seg_dir: Optional[str] = None,
                  seg_name=None) -> None:
    """Each image of the json reads, with the json's height and width."""
    problems: Dict[str, List[str]] = {}
    bar = _progress(len(images), progress)
    for img in images:
        expected = (img['height'], img['width'])
        path = osp.join(img_dir, img['file_name'])
        try:
            size = files.size(path, mode)
            if size != expected:
                problems.setdefault(
                    'images differ in size from the json (height, width)',
                    []).append(f'{path} is {size}, json {expected}')
        except OSError as e:
            _file_problem(problems, 'images', path, e)
        if seg_dir is not None:
            seg_path = osp.join(seg_dir, seg_name(img))
            try:
                size = files.header_size(seg_path)
                if size != expected:
                    problems.setdefault(
                        'panoptic maps differ in size from their image',
                        []).append(f'{seg_path} is {size}, image {expected}')
            except OSError as e:
                _file_problem(problems, 'panoptic maps', seg_path, e)
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    _file_errors(report, problems)


def _image_table(report: DatasetReport, data: dict,
                 ann_file: str) -> Dict[int, dict]:
    images = {}
    for img in data['images']:
        missing = [k for k in ('id', 'file_name', 'height', 'width')
                   if k not in img]
        if missing:
            report.errors.append(f'{ann_file}: image {img} has no '
                                 f'{", ".join(missing)}')
            continue
        if img['id'] in images:
            report.errors.append(f'{ann_file}: image id {img["id"]} is used '
                                 'twice')
        images[img['id']] = img
    if not data['images']:
        report.errors.append(f'{ann_file} has no images')
    return images


def _kept_images(report, ds_cfg, cls, images, ids_in_classes,
                 ids_usable) -> None:
    """Images left by mmdet's ``filter_data`` in a training set.

    ``ids_in_classes``: the images mmdet's ``filter_empty_gt`` keeps (any
    annotation of the classes, valid or not); ``ids_usable``: those with at
    least one valid annotation of the classes.
    """
    if _arg(ds_cfg, cls, 'test_mode', False):
        return
    filter_cfg = _arg(ds_cfg, cls, 'filter_cfg') or {}
    filter_empty = filter_cfg.get('filter_empty_gt', False)
    min_size = filter_cfg.get('min_size', 0)
    kept = [i for i, img in images.items()
            if (not filter_empty or i in ids_in_classes)
            and min(img['width'], img['height']) >= min_size]
    report.num_kept_images = len(kept)
    if images and not set(kept) & ids_usable:
        report.errors.append(
            f'nothing to train on in {report.source}: '
            f'{len(images) - len(ids_usable)} of {len(images)} images have no '
            f'valid annotation of the classes, filter_cfg={filter_cfg} keeps '
            f'{len(kept)} images'
            + (' (mmengine would fail with "need at least one array to '
               'concatenate")' if not kept else ''))


def check_coco(ds_cfg, cls, split: str, mode: str, max_invalid_ratio: float,
               progress: bool) -> DatasetReport:
    """Check an mmdet ``CocoDataset`` (instances json)."""
    data_root = _arg(ds_cfg, cls, 'data_root')
    ann_file = _join(data_root, _arg(ds_cfg, cls, 'ann_file', ''))
    prefix = _arg(ds_cfg, cls, 'data_prefix', {}) or {}
    backend_args = _arg(ds_cfg, cls, 'backend_args')
    report = DatasetReport(split, cls.__name__, ann_file)
    if 'img' not in prefix:
        report.errors.append(f"data_prefix {prefix} has no 'img' key (the "
                             'image directory mmdet joins with file_name)')
        return report
    img_dir = _join(data_root, prefix['img'])
    data = _load_json(ann_file, backend_args,
                      ('images', 'annotations', 'categories'))
    classes = _metainfo(ds_cfg, cls).get('classes')
    cats = _check_classes(report, classes, data['categories'], ann_file)
    images = _image_table(report, data, ann_file)
    report.num_images = len(images)
    report.num_annotations = len(data['annotations'])
    if not data['annotations'] and not _arg(ds_cfg, cls, 'test_mode', False):
        report.errors.append(f'{ann_file} has no annotations, nothing to '
                             'train on')
    class_ids = {i for i, c in cats.items() if c['name'] in (classes or ())}
    ids_in_classes, ids_usable = set(), set()
    for ann in data['annotations']:
        where = (f'annotation id {ann.get("id")} of image '
                 f'{ann.get("image_id")}')
        if ann.get('category_id') in class_ids:
            ids_in_classes.add(ann.get('image_id'))
        if ann.get('ignore', False):
            continue
        img = images.get(ann.get('image_id'))
        if img is None:
            report.count(UNKNOWN_IMAGE, where)
            continue
        where = (f'annotation id {ann.get("id")} of {img["file_name"]}')
        if ann.get('category_id') not in cats:
            report.count(UNKNOWN_CATEGORY,
                         f'{where}: category_id {ann.get("category_id")}')
            continue
        if not _check_box(report, ann, img, where):
            continue
        segm = ann.get('segmentation')
        if isinstance(segm, list) and segm and any(
                len(poly) < 6 for poly in segm):
            report.count(BAD_POLYGON, f'{where}: polygon lengths '
                         f'{[len(p) for p in segm]}')
        if ann['category_id'] not in class_ids:
            report.count(NOT_IN_CLASSES,
                         f'{where}: {cats[ann["category_id"]]["name"]!r}',
                         invalid=False)
            continue
        ids_usable.add(img['id'])
    _kept_images(report, ds_cfg, cls, images, ids_in_classes, ids_usable)
    _ratio_error(report, max_invalid_ratio, 'mmdet')
    _check_images(report, list(images.values()), img_dir,
                  _Files(backend_args), mode, progress)
    return report


def _panoptic_ids(rgb: np.ndarray) -> np.ndarray:
    """Segment ids of a panoptic PNG decoded as BGR: R + 256 G + 256^2 B."""
    rgb = rgb.astype(np.int64)
    return rgb[..., 2] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 0]


def check_coco_panoptic(ds_cfg, cls, split: str, mode: str,
                        max_invalid_ratio: float,
                        progress: bool) -> DatasetReport:
    """Check an mmdet ``CocoPanopticDataset`` (panoptic json + PNGs)."""
    data_root = _arg(ds_cfg, cls, 'data_root')
    ann_file = _join(data_root, _arg(ds_cfg, cls, 'ann_file', ''))
    prefix = _arg(ds_cfg, cls, 'data_prefix', {}) or {}
    backend_args = _arg(ds_cfg, cls, 'backend_args')
    report = DatasetReport(split, cls.__name__, ann_file)
    if not prefix.get('img'):
        report.errors.append(f"data_prefix {prefix} has no 'img' directory")
        return report
    img_dir = _join(data_root, prefix['img'])
    seg_dir = _join(data_root, prefix['seg']) if prefix.get('seg') else None
    data = _load_json(ann_file, backend_args,
                      ('images', 'annotations', 'categories'))
    meta = _metainfo(ds_cfg, cls)
    classes = meta.get('classes')
    cats = _check_classes(report, classes, data['categories'], ann_file)
    by_name = {c['name']: c for c in cats.values()}
    for key, isthing in (('thing_classes', 1), ('stuff_classes', 0)):
        wrong = [n for n in meta.get(key) or ()
                 if n in by_name and bool(by_name[n].get('isthing')) != isthing]
        if wrong:
            report.errors.append(f'{key} {wrong} of metainfo have isthing='
                                 f'{1 - isthing} in {ann_file}')
    images = _image_table(report, data, ann_file)
    report.num_images = len(images)
    class_ids = {i for i, c in cats.items() if c['name'] in (classes or ())}
    segments_of: Dict[int, List[dict]] = {}
    ids_with_ann = set()
    not_in_classes: List[str] = []
    for ann in data['annotations']:
        img = images.get(ann.get('image_id'))
        segs = ann.get('segments_info', [])
        report.num_annotations += len(segs)
        if img is None:
            for seg in segs:
                report.count(UNKNOWN_IMAGE, f'segment {seg.get("id")} of '
                             f'image_id {ann.get("image_id")}')
            continue
        segments_of[img['id']] = segs
        for seg in segs:
            where = f'segment {seg.get("id")} of {ann.get("file_name")}'
            cat = seg.get('category_id')
            if cat not in cats:
                report.count(UNKNOWN_CATEGORY, f'{where}: category_id {cat}')
                continue
            if cat not in class_ids:
                # mmdet's cat2label has no entry: a KeyError while loading
                not_in_classes.append(f'{where}: {cats[cat]["name"]!r}')
                continue
            if not _check_box(report, seg, img, where):
                continue
            if cats[cat].get('isthing') and not seg.get('iscrowd', False):
                ids_with_ann.add(img['id'])  # mmdet's filter_data: the same
    if not_in_classes:
        report.errors.append(
            f'{len(not_in_classes)} segments of {ann_file} are of categories '
            'that are not in metainfo classes (mmdet fails with a KeyError), '
            'e.g. ' + '; '.join(not_in_classes[:MAX_EXAMPLES]))
    if report.invalid[UNKNOWN_CATEGORY]:
        report.errors.append(
            f'{report.invalid[UNKNOWN_CATEGORY]} segments of {ann_file} have '
            'a category_id that is not in its categories (e.g. '
            + '; '.join(report.examples[UNKNOWN_CATEGORY])
            + '); mmdet fails with a KeyError')
    _kept_images(report, ds_cfg, cls, images, ids_with_ann, ids_with_ann)
    _ratio_error(report, max_invalid_ratio, 'mmdet')

    files = _Files(backend_args)

    def seg_name(img):  # as mmdet's CocoPanopticDataset.parse_data_info
        return img['file_name'].replace('.jpg', '.png')

    _check_images(report, list(images.values()), img_dir, files, mode,
                  progress, seg_dir, seg_name)
    if mode == 'full' and seg_dir is not None:
        _check_panoptic_maps(report, images, segments_of, seg_dir,
                             seg_name, files)
    return report


def _check_panoptic_maps(report, images, segments_of, seg_dir, seg_name,
                         files) -> None:
    """Segment ids of each panoptic PNG against its ``segments_info``."""
    unlisted = []
    for img_id, img in images.items():
        path = osp.join(seg_dir, seg_name(img))
        try:
            ids = set(np.unique(_panoptic_ids(files.decode(path))).tolist())
        except OSError:
            continue  # reported by _check_images
        listed = {s.get('id') for s in segments_of.get(img_id, [])}
        extra = sorted(ids - listed - {0})
        if extra:
            unlisted.append(f'{path}: ids {extra[:MAX_EXAMPLES]}')
        for seg in segments_of.get(img_id, []):
            if seg.get('id') not in ids:
                report.count(EMPTY_SEGMENT, f'segment {seg.get("id")} of '
                             f'{path}')
    if unlisted:
        _file_errors(report, {'panoptic maps have segment ids that '
                              'segments_info does not list': unlisted})


# --------------------------------------------------------------------------
# Semantic segmentation (mmseg)
# --------------------------------------------------------------------------
def seg_label_values(raw_values: np.ndarray, reduce_zero_label: bool,
                     label_map: Optional[dict]) -> np.ndarray:
    """The labels mmseg's ``LoadAnnotations`` makes of raw map values.

    Values wrap to uint8 first (``astype(np.uint8)``); ``reduce_zero_label``
    maps 0 to 255 and v to v - 1 (255 stays 255); ``label_map`` (a subset of
    the data set's classes) maps old to new ids.
    """
    labels = raw_values.astype(np.int64) % 256
    if reduce_zero_label:
        labels = np.where(labels == 0, 255, labels - 1)
        labels = np.where(labels == 254, 255, labels)
    if label_map:
        labels = np.array([label_map.get(int(v), int(v)) for v in labels],
                          np.int64)
    return labels


def _seg_pairs(report, ds_cfg, cls) -> Tuple[List[Tuple[str, str]], dict]:
    """(image, label map) paths as mmseg's ``BaseSegDataset`` lists them."""
    from mmengine import fileio
    data_root = _arg(ds_cfg, cls, 'data_root')
    prefix = _arg(ds_cfg, cls, 'data_prefix', {}) or {}
    img_dir = _join(data_root, prefix.get('img_path'))
    seg_dir = _join(data_root, prefix.get('seg_map_path'))
    ann_file = _join(data_root, _arg(ds_cfg, cls, 'ann_file', ''))
    img_suffix = _arg(ds_cfg, cls, 'img_suffix', '.jpg')
    seg_suffix = _arg(ds_cfg, cls, 'seg_map_suffix', '.png')
    backend_args = _arg(ds_cfg, cls, 'backend_args')
    info = dict(img_dir=img_dir, seg_dir=seg_dir)
    pairs = []
    if ann_file and not osp.isdir(ann_file):
        if not osp.isfile(ann_file):
            report.errors.append(f'ann_file {ann_file} does not exist')
            return pairs, info
        report.source = ann_file
        names = [line.strip() for line in
                 fileio.list_from_file(ann_file, backend_args=backend_args)]
        for name in filter(None, names):
            pairs.append((osp.join(img_dir, name + img_suffix),
                          osp.join(seg_dir, name + seg_suffix)
                          if seg_dir is not None else None))
        if not pairs:
            report.errors.append(f'ann_file {ann_file} lists no images')
        return pairs, info
    report.source = img_dir
    if not img_dir or not fileio.isdir(img_dir, backend_args=backend_args):
        report.errors.append(f'image directory {img_dir!r} (data_root + '
                             'data_prefix.img_path) does not exist')
        return pairs, info
    for name in sorted(fileio.list_dir_or_file(
            img_dir, list_dir=False, suffix=img_suffix, recursive=True,
            backend_args=backend_args)):
        stem = name[:-len(img_suffix)]
        pairs.append((osp.join(img_dir, name),
                      osp.join(seg_dir, stem + seg_suffix)
                      if seg_dir is not None else None))
    if not pairs:
        report.errors.append(f'image directory {img_dir} has no '
                             f'{img_suffix!r} images (img_suffix)')
    return pairs, info


def check_semantic(ds_cfg, cls, split: str, mode: str,
                   max_invalid_ratio: float, progress: bool) -> DatasetReport:
    """Check an mmseg ``BaseSegDataset``: images, label maps, label values.

    Label maps are decoded in both modes (their values are the check); a
    value is valid when, after :func:`seg_label_values`, it is in
    ``[0, num_classes)`` or equals ``ignore_index``.
    """
    report = DatasetReport(split, cls.__name__, '')
    meta = _metainfo(ds_cfg, cls)
    classes = meta.get('classes')
    if not classes:
        report.errors.append('metainfo has no classes (set '
                             'metainfo=dict(classes=(...)))')
    num_classes = len(classes or ())
    try:
        label_map = cls.get_label_map(classes)
    except ValueError as e:
        report.errors.append(f'metainfo classes: {e}')
        label_map = None
    ignore_index = _arg(ds_cfg, cls, 'ignore_index', 255)
    reduce_zero_label = _arg(ds_cfg, cls, 'reduce_zero_label', False)
    files = _Files(_arg(ds_cfg, cls, 'backend_args'))
    pairs, info = _seg_pairs(report, ds_cfg, cls)
    report.num_images = len(pairs)
    report.num_annotations = sum(seg is not None for _, seg in pairs)
    problems: Dict[str, List[str]] = {}
    out_of_range = []
    bar = _progress(len(pairs), progress)
    for img_path, seg_path in pairs:
        try:
            img_size = files.size(img_path, mode)
        except OSError as e:
            _file_problem(problems, 'images', img_path, e)
            img_size = None
        if seg_path is not None:
            try:
                seg = files.decode(seg_path, flag='unchanged').squeeze()
            except OSError as e:
                _file_problem(problems, 'label maps', seg_path, e)
                seg = None
            if seg is not None and seg.ndim != 2:
                problems.setdefault(
                    'label maps are not single-channel', []).append(
                    f'{seg_path}: shape {seg.shape}')
            elif seg is not None:
                if img_size is not None and seg.shape != img_size:
                    problems.setdefault(
                        'label maps differ in size from their image',
                        []).append(f'{seg_path} is {seg.shape}, image '
                                   f'{img_size}')
                raw = np.unique(seg)
                labels = seg_label_values(raw, reduce_zero_label, label_map)
                bad = ((labels < 0) | (labels >= num_classes)) & \
                    (labels != ignore_index) | (raw > 255)
                if bad.any():
                    out_of_range.append(
                        f'{seg_path}: values {raw[bad].tolist()[:10]}')
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    if pairs and info['seg_dir'] is None:
        report.warnings.append('data_prefix has no seg_map_path: no label '
                               'maps to check')
    _file_errors(report, problems)
    if out_of_range:
        ops = (['reduce_zero_label'] if reduce_zero_label else []) + \
            (['label_map'] if label_map else [])
        report.errors.append(
            f'{len(out_of_range)} label maps have values outside [0, '
            f'{num_classes}) and != ignore_index={ignore_index}'
            + (f' (after {" and ".join(ops)})' if ops else '')
            + ': ' + ', '.join(out_of_range[:MAX_EXAMPLES])
            + (f' and {len(out_of_range) - MAX_EXAMPLES} more'
               if len(out_of_range) > MAX_EXAMPLES else ''))
    if info['seg_dir'] and osp.isdir(info['seg_dir']) and pairs:
        _orphan_maps(report, pairs, info['seg_dir'],
                     _arg(ds_cfg, cls, 'seg_map_suffix', '.png'))
    return report


def _orphan_maps(report, pairs, seg_dir, seg_suffix) -> None:
    """Label maps without an image: a sign of a stale or mixed directory."""
    listed = {osp.normpath(seg) for _, seg in pairs}
    orphans = []
    for d, _, names in os.walk(seg_dir):
        orphans += [p for p in (osp.normpath(osp.join(d, n)) for n in names
                                if n.endswith(seg_suffix)) if p not in listed]
    if orphans:
        report.warnings.append(
            f'{len(orphans)} label maps in {seg_dir} have no image (stale '
            f'files?), e.g. {", ".join(sorted(orphans)[:MAX_EXAMPLES])}')


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------
def _checker(cls):
    """The check function for a data set class, or None."""
    checks = []
    try:
        from mmdet.datasets import CocoDataset, CocoPanopticDataset
        checks += [(CocoPanopticDataset, check_coco_panoptic),
                   (CocoDataset, check_coco)]
    except ImportError:
        pass
    try:
        from mmseg.datasets import BaseSegDataset
        checks.append((BaseSegDataset, check_semantic))
    except ImportError:
        pass
    for base, check in checks:
        if issubclass(cls, base):
            return check
    return None


def check_config_datasets(cfg, splits: Sequence[str] = SPLITS,
                          mode: str = 'full',
                          max_invalid_ratio: float = DEFAULT_MAX_INVALID_RATIO,
                          progress: bool = True, raise_errors: bool = True,
                          log=print) -> List[DatasetReport]:
    """Check the data sets of the dataloaders of ``splits`` of ``cfg``.

    Prints a summary of each (through ``log``) and, with ``raise_errors``,
    raises :class:`DatasetCheckError` listing every error of every data set.
    Returns the reports.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    if not (isinstance(max_invalid_ratio, (int, float))
            and 0 <= max_invalid_ratio <= 1):
        raise ValueError('max_invalid_ratio must be a number in [0, 1], got '
                         f'{max_invalid_ratio!r}')
    scope = task_scope(cfg)
    reports = []
    for split, ds_cfg in config_datasets(cfg, splits):
        type_ = ds_cfg.get('type')
        name = getattr(type_, '__name__', type_)
        cls = dataset_class(type_, scope) if type_ is not None else None
        check = _checker(cls) if cls is not None else None
        if check is None:
            report = DatasetReport(split, str(name), '', checked=False)
            report.warnings.append(
                'unknown data set type' if cls is None else
                'only COCO / COCO panoptic (mmdet) and BaseSegDataset '
                '(mmseg) data sets are checked')
        else:
            try:
                report = check(ds_cfg, cls, split, mode, max_invalid_ratio,
                               progress)
            except DatasetCheckError as e:
                report = DatasetReport(split, cls.__name__,
                                       str(ds_cfg.get('ann_file', '')))
                report.errors.append(str(e))
        log(report.summary())
        reports.append(report)
    errors = [f'{r.title}:\n  ' + '\n  '.join(r.errors)
              for r in reports if r.errors]
    if errors and raise_errors:
        raise DatasetCheckError('data check failed:\n' + '\n'.join(errors))
    return reports


def check_before_training(cfg) -> Optional[List[DatasetReport]]:
    """The data check ``tools/train.py`` runs before it builds the runner.

    Reads ``cfg.data_check`` (``skip``, ``mode`` ('fast' by default),
    ``max_invalid_ratio``), checks the train data set and, when the config
    validates (``val_cfg``), the val data set. Raises
    :class:`DatasetCheckError` on errors, with the way to skip the check.
    Returns the reports (None when skipped).
    """
    from mmengine.logging import print_log
    options = dict(cfg.get(CONFIG_KEY) or {})
    unknown = set(options) - {'skip', 'mode', 'max_invalid_ratio'}
    if unknown:
        raise ValueError(f'{CONFIG_KEY} has unknown keys {sorted(unknown)}; '
                         "known: 'skip', 'mode', 'max_invalid_ratio'")
    if options.get('skip', False):
        print_log(f'data check skipped ({CONFIG_KEY}.skip=True)',
                  logger='current')
        return None
    splits = ['train']
    if cfg.get('val_cfg') and cfg.get('val_dataloader'):
        splits.append('val')
    rank0 = os.environ.get('RANK', '0') == '0'

    def log(text):
        if rank0:
            print_log(text, logger='current')

    try:
        return check_config_datasets(
            cfg, splits, mode=options.get('mode', 'fast'),
            max_invalid_ratio=options.get('max_invalid_ratio',
                                          DEFAULT_MAX_INVALID_RATIO),
            progress=rank0, log=log)
    except DatasetCheckError as e:
        raise DatasetCheckError(
            f'{e}\nFix the data (tools/misc/check_dataset.py CONFIG checks it '
            f'in full), or skip this check with --cfg-options '
            f'{CONFIG_KEY}.skip=True.') from None
