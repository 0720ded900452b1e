"""Train a detector or a segmentor from an mmctx (or any mmdet / mmseg) config.

The task library is picked from the config's ``default_scope`` (``mmdet`` or
``mmseg``; both are set by their ``default_runtime`` bases); mmctx is imported
first, so its compatibility fixes apply and its modules are registered.

Examples::

    python tools/train.py configs/demo/retinanet_r18-gcb_fpn64_shapes.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume          # latest ckpt in work dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_100.pth        # a given ckpt
    python tools/train.py CONFIG --cfg-options train_cfg.max_iters=10
    bash tools/dist_train.sh CONFIG 8                                     # 8 GPUs
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

import mmctx  # noqa: E402,F401  (compat fixes + registration)
from mmctx.utils import (add_runner_args, build_runner, close_distributed,  # noqa: E402
                         load_tool_config)
from mmctx.utils.dataset_check import check_before_training  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a detector (mmdet) or segmentor (mmseg)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp', action='store_true',
        help='automatic mixed precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the actual total batch size '
        '(needs `auto_scale_lr` in the config)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume training: without a value from the latest checkpoint '
        'of the work dir, otherwise from the given checkpoint')
    add_runner_args(parser)
    return parser.parse_args(argv)


def add_mmctx_import(cfg):
    """Name mmctx in ``custom_imports`` so the dumped config is standalone."""
    custom = cfg.get('custom_imports') or dict(imports=[])
    imports = list(custom.get('imports', []))
    if 'mmctx' not in imports:
        imports.append('mmctx')
    custom['imports'] = imports
    custom.setdefault('allow_failed_imports', False)
    cfg.custom_imports = custom


def enable_amp(cfg):
    optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_type == 'AmpOptimWrapper':
        return
    if optim_type != 'OptimWrapper':
        raise ValueError(
            f'--amp only supports OptimWrapper configs, got {optim_type}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def build_cfg(args):
    cfg, _ = load_tool_config(args)
    add_mmctx_import(cfg)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = '
                               'dict(base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_cfg(args)
    check_before_training(cfg)  # data_check.skip=True in the config skips it
    build_runner(cfg).train()
    close_distributed()


if __name__ == '__main__':
    main()
