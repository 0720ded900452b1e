"""Check the data sets of a config: images, class names, annotations, labels.

Reads the annotation files of every dataloader data set of the config
(mmdet ``CocoDataset`` / ``CocoPanopticDataset``, mmseg ``BaseSegDataset``
and subclasses) directly, so that what mmdet / mmseg would drop silently is
counted, and prints per data set: image / annotation counts, invalid or
unused annotations per reason with examples, and errors naming the files.
Exits with status 1 when a data set has errors (see
``mmctx/utils/dataset_check.py`` for what is checked).

By default every image is decoded (``--mode full``); ``--mode fast`` reads
only the image headers (existence, size), as ``tools/train.py`` does before
training.

Examples::

    python tools/misc/check_dataset.py configs/demo/retinanet_r50w16-gcb_fpn64_1xb4-400it_shapes-128.py
    python tools/misc/check_dataset.py CONFIG --split train --mode fast
    python tools/misc/check_dataset.py CONFIG --max-invalid-ratio 0 \
        --cfg-options data_root=data/other/
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from mmctx.utils.dataset_check import (  # noqa: E402
    DEFAULT_MAX_INVALID_RATIO, MODES, SPLITS, DatasetCheckError,
    check_config_datasets)
from mmctx.utils import register_all_modules  # noqa: E402
from mmctx.utils.tool_config import check_override_keys, task_scope  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Check the data sets of a config before training: '
        'images exist and decode, class names match the annotation file, '
        'invalid annotations are counted, label values are in range')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--split', choices=SPLITS + ('all', ), default='all',
        help='which dataloader to check (default: all; a data set shared by '
        'val and test is checked once)')
    parser.add_argument(
        '--mode', choices=MODES, default='full',
        help='full: decode every image (default); fast: existence and '
        'header (width, height) only, as before training')
    parser.add_argument(
        '--max-invalid-ratio', type=float, default=DEFAULT_MAX_INVALID_RATIO,
        help='error when more than this fraction of a data set\'s '
        f'annotations is invalid (default {DEFAULT_MAX_INVALID_RATIO})')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bars')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (checked as in '
        'tools/train.py)')
    parser.add_argument('--allow-new-cfg-keys', action='store_true',
                        help='let --cfg-options add keys not in the config')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    register_all_modules()
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        if not args.allow_new_cfg_keys:
            check_override_keys(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    task_scope(cfg)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    splits = SPLITS if args.split == 'all' else (args.split, )
    try:
        reports = check_config_datasets(
            cfg, splits, mode=args.mode,
            max_invalid_ratio=args.max_invalid_ratio,
            progress=not args.no_progress)
    except DatasetCheckError as e:
        print(e, file=sys.stderr)
        return 1
    print(f'data check passed: {len(reports)} data sets '
          f'({", ".join(r.split for r in reports)}), mode {args.mode}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
