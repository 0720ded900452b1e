"""Train a detector or a segmentor from an mmctx (or any mmdet / mmseg) config.

The task library is picked from the config's ``default_scope`` (``mmdet`` or
``mmseg``; both are set by their ``default_runtime`` bases); ``main`` first calls
:func:`mmctx.utils.register_all_modules` (importing mmctx applies its compatibility fixes).

Checkpoints are loaded safely (see :mod:`mmctx.utils.checkpoint`;
``--unsafe-load`` for trusted files that need full unpickling) and written
crash-safely (``AtomicCheckpointHook`` replaces the config's
``CheckpointHook``). An explicit ``--resume`` fails when there is nothing to
resume, or when the checkpoint already reaches the end of training.

Examples::

    python tools/train.py configs/demo/retinanet_r50w16-gcb_fpn64_1xb4-400it_shapes-128.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume          # latest ckpt in work dir
    python tools/train.py CONFIG --resume work_dirs/x/iter_100.pth        # a given ckpt
    python tools/train.py CONFIG --work-dir work_dirs/x --resume auto     # latest ckpt, if any
    python tools/train.py CONFIG --cfg-options train_cfg.max_iters=10
    bash tools/dist_train.sh CONFIG 8                                     # 8 GPUs
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from mmctx.engine.hooks import ResumeCheckHook  # noqa: E402
from mmctx.utils import (add_runner_args, add_unsafe_load_arg,  # noqa: E402
                         apply_unsafe_load_arg, build_runner,
                         close_distributed, latest_checkpoint,
                         load_tool_config, register_all_modules)
from mmctx.utils.dataset_check import check_before_training  # noqa: E402

#: ``--resume`` without a value
LATEST = 'latest'
#: ``--resume auto``
AUTO = 'auto'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a detector (mmdet) or segmentor (mmseg)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--amp', action='store_true',
        help='automatic mixed precision training (needs a CUDA GPU: '
        "mmengine's AmpOptimWrapper does not run on the CPU)")
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by the actual total batch size '
        '(needs `auto_scale_lr` in the config)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const=LATEST, metavar='CKPT|auto',
        help='resume training: without a value from the checkpoint the work '
        "dir's last_checkpoint names (an error if there is none), with a "
        'path from that checkpoint, with "auto" from the latest checkpoint '
        'if there is one and from scratch otherwise. Resuming a checkpoint '
        'that already reaches max_iters / max_epochs is an error (a warning '
        'with "auto")')
    add_unsafe_load_arg(parser)
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
    from mmengine.device import (is_cuda_available, is_mlu_available,
                                 is_musa_available, is_npu_available)
    if not (is_cuda_available() or is_npu_available() or is_mlu_available()
            or is_musa_available()):
        raise RuntimeError(
            '--amp needs a CUDA GPU (or an NPU / MLU / MUSA device): '
            "mmengine's AmpOptimWrapper does not run on the CPU, and this "
            'machine has no such device. Train without --amp.')
    optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_type == 'AmpOptimWrapper':
        return
    if optim_type != 'OptimWrapper':
        raise ValueError(
            f'--amp only supports OptimWrapper configs, got {optim_type}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def use_atomic_checkpoints(cfg):
    """Save checkpoints with mmctx's crash-safe ``AtomicCheckpointHook``
    where the config uses mmengine's ``CheckpointHook``."""
    from mmengine.hooks import CheckpointHook
    hook = cfg.get('default_hooks', {}).get('checkpoint')
    if hook is not None and hook.get('type') in (
            'CheckpointHook', 'mmengine.CheckpointHook', CheckpointHook):
        hook['type'] = 'AtomicCheckpointHook'


def set_resume(cfg, resume):
    """``cfg.resume`` / ``cfg.load_from`` for a ``--resume`` value."""
    if resume is None:
        return
    cfg.resume = True
    if resume == AUTO:  # mmengine's lenient auto-resume
        cfg.load_from = None
    elif resume == LATEST:
        cfg.load_from = latest_checkpoint(cfg.work_dir)
    else:
        if '://' not in resume and not osp.isfile(resume):
            raise FileNotFoundError(
                f'--resume: checkpoint {resume} does not exist')
        cfg.load_from = resume


def build_cfg(args):
    cfg, _ = load_tool_config(args)
    add_mmctx_import(cfg)
    use_atomic_checkpoints(cfg)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = '
                               'dict(base_batch_size=...)` in the config')
        cfg.auto_scale_lr.enable = True

    set_resume(cfg, args.resume)
    return cfg


def main(argv=None):
    register_all_modules()
    args = parse_args(argv)
    apply_unsafe_load_arg(args)
    cfg = build_cfg(args)
    check_before_training(cfg)  # data_check.skip=True in the config skips it
    runner = build_runner(cfg)
    if args.resume is not None:
        runner.register_hook(ResumeCheckHook(strict=args.resume != AUTO))
    runner.train()
    close_distributed()


if __name__ == '__main__':
    main()
