"""Evaluate a checkpoint of a detector or a segmentor on its config's test set.

The task library is picked from the config's ``default_scope`` (``mmdet`` or
``mmseg``); ``main`` first calls :func:`mmctx.utils.register_all_modules` (importing
mmctx applies :mod:`mmctx.compat`, so checkpoints written by any torch version load).

The checkpoint is loaded safely (tensors, plain containers and the types
mmengine writes; ``--unsafe-load`` for trusted files that need full
unpickling, see :mod:`mmctx.utils.checkpoint`) and must fit the model: a
missing or unexpected key or a shape mismatch is an error naming them
(``--no-strict`` loads the matching weights only).

Examples::

    python tools/test.py CONFIG work_dirs/x/iter_500.pth
    python tools/test.py CONFIG CKPT --out results.pkl      # mmdet: dump predictions
    python tools/test.py CONFIG CKPT --out pred_dir         # mmseg: save label maps
    python tools/test.py CONFIG CKPT --show-dir vis         # painted predictions
    bash tools/dist_test.sh CONFIG CKPT 8
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from mmctx.engine.hooks import CheckpointKeysHook  # noqa: E402
from mmctx.utils import (add_runner_args, add_unsafe_load_arg,  # noqa: E402
                         apply_unsafe_load_arg, build_runner,
                         close_distributed, load_tool_config,
                         register_all_modules)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a detector or segmentor checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out',
        help='mmdet: a .pkl file to dump the predictions to; '
        'mmseg: a directory to save the predicted label maps to')
    parser.add_argument(
        '--show', action='store_true', help='show the predictions in a window')
    parser.add_argument(
        '--show-dir', help='directory to save images painted with predictions')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='seconds between --show')
    parser.add_argument(
        '--tta', action='store_true',
        help='test-time augmentation (needs tta_model and tta_pipeline)')
    parser.add_argument(
        '--no-strict', action='store_true',
        help='load a checkpoint that does not fit the model exactly: only '
        'the weights whose keys and shapes match (the others keep their '
        'initialization); by default missing or unexpected keys are an error')
    add_unsafe_load_arg(parser)
    add_runner_args(parser)
    return parser.parse_args(argv)


def enable_visualization(cfg, args, scope):
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show / --show-dir need a `visualization` entry in '
            'default_hooks (mmdet: DetVisualizationHook, mmseg: '
            'SegVisualizationHook)')
    hook = hooks['visualization']
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        else:
            # mmseg's hook draws every `interval`-th image (default 50):
            # paint them all, as mmdet's test_out_dir does
            hook['interval'] = 1
            cfg.visualizer['save_dir'] = args.show_dir


def enable_tta(cfg):
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise RuntimeError('--tta needs `tta_model` and `tta_pipeline` in '
                           'the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def build_cfg(args):
    cfg, scope = load_tool_config(args)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    if args.show or args.show_dir:
        enable_visualization(cfg, args, scope)
    if args.tta:
        enable_tta(cfg)
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    return cfg, scope


def main(argv=None):
    register_all_modules()
    args = parse_args(argv)
    apply_unsafe_load_arg(args)
    cfg, scope = build_cfg(args)
    runner = build_runner(cfg)
    runner.register_hook(CheckpointKeysHook(strict=not args.no_strict,
                                            source=args.checkpoint))
    if args.out is not None and scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}')
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    metrics = runner.test()
    close_distributed()
    return metrics


if __name__ == '__main__':
    main()
