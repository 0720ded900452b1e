"""Look at what a config's training pipeline feeds the model, annotations drawn.

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir work_dirs/browse \
        --not-show --max 20

The task library is picked from the config's ``default_scope``: ``mmdet``
(boxes, instance masks, panoptic segments drawn by mmdet's
``DetLocalVisualizer``) or ``mmseg`` (label maps by mmseg's
``SegLocalVisualizer``), both built from the config's ``visualizer``. Every
sample goes through the full training pipeline (resizing, flips, crops...),
so the pictures show what the model sees; they are written to
``--output-dir/<image name>`` and, without ``--not-show``, shown in a window.
"""
import argparse
import copy
import os
import os.path as osp
import sys
import time

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.utils import ProgressBar  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the training samples of a config with their annotations')
    parser.add_argument('config', help='config file (default_scope mmdet or mmseg)')
    parser.add_argument('--output-dir', help='write the pictures here')
    parser.add_argument('--not-show', action='store_true', help='do not open a window')
    parser.add_argument('--max', type=int, help='draw at most this many samples')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='seconds each picture is shown')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def build_dataset_and_visualizer(cfg):
    """The training set (with its pipeline) and the task library's visualizer."""
    from mmctx.utils import register_all_modules, task_scope
    scope = task_scope(cfg)
    register_all_modules(init_default_scope=scope)
    if scope == 'mmdet':
        from mmdet.registry import DATASETS, VISUALIZERS
    else:
        from mmseg.registry import DATASETS, VISUALIZERS
    if 'train_dataloader' not in cfg:
        raise KeyError(f'{cfg.filename}: no train_dataloader to browse')
    dataset = DATASETS.build(copy.deepcopy(cfg.train_dataloader.dataset))
    vis_cfg = copy.deepcopy(cfg.get('visualizer', None))
    if vis_cfg is None:
        raise KeyError(f'{cfg.filename}: no visualizer in the config')
    # a name of its own: mmengine keeps one visualizer per name in a process
    vis_cfg['name'] = f'browse_dataset_{scope}_{time.time_ns()}'
    vis_cfg.pop('vis_backends', None)  # nothing to log to, the pictures are files
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset.metainfo
    return dataset, visualizer


def plain_annotations(sample):
    """mmdet's visualizer draws tensors and arrays: boxes as a tensor
    (not a ``BaseBoxes``), instance masks as a bool array (not ``BitmapMasks``)."""
    instances = sample.get('gt_instances', None)
    if instances is None:
        return sample
    boxes = instances.get('bboxes', None)
    if boxes is not None and hasattr(boxes, 'tensor'):
        instances.bboxes = boxes.tensor
    masks = instances.get('masks', None)
    if masks is not None and hasattr(masks, 'to_ndarray'):
        instances.masks = masks.to_ndarray().astype(bool)
    return sample


def browse(dataset, visualizer, output_dir=None, max_count=None, show=False,
           show_interval=2.0):
    """Draw the first ``max_count`` samples; returns the paths written."""
    count = len(dataset) if max_count is None else min(max_count, len(dataset))
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
    written, used = [], set()
    progress = ProgressBar(count)
    for i in range(count):
        item = dataset[i]
        sample = plain_annotations(item['data_samples'])
        image = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # CHW BGR -> HWC RGB
        name = osp.basename(sample.img_path)
        if name in used:  # the same image twice (a repeated data set)
            name = f'{i:06d}_{name}'
        used.add(name)
        out_file = osp.join(output_dir, name) if output_dir is not None else None
        visualizer.add_datasample(name, image.copy(), data_sample=sample, draw_gt=True,
                                  draw_pred=False, show=show, wait_time=show_interval,
                                  out_file=out_file)
        if out_file is not None:
            written.append(out_file)
        progress.update()
    print()
    return written


def main(argv=None):
    args = parse_args(argv)
    if args.not_show and args.output_dir is None:
        raise ValueError('nothing to do: with --not-show, give --output-dir')
    if args.max is not None and args.max < 1:
        raise ValueError(f'--max must be at least 1, got {args.max}')
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    dataset, visualizer = build_dataset_and_visualizer(cfg)
    written = browse(dataset, visualizer, args.output_dir, args.max, not args.not_show,
                     args.show_interval)
    if args.output_dir is not None:
        print(f'{len(written)} pictures in {args.output_dir}')
    return written


if __name__ == '__main__':
    main()
