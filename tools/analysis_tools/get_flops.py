"""Parameters and FLOPs of an mmctx (or any mmdet / mmseg) config.

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W]

FLOPs are traced, so the products inside attention blocks (and the fused
``scaled_dot_product_attention``) are counted; one multiply-add is one FLOP.
Both conventions are printed: every multiply-add, and those of conv / linear
layers only; a hook-based counter (mmcv's, and the papers that used one) sees
about the latter: it visits module leaves, so it misses the attention products
(it also counts norms and pooling, a few tenths of a percent).
``Params`` counts trainable parameters, the papers' convention (frozen ResNet
stem/res2 excluded); the total is printed beside it.
"""
import argparse

import torch
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

from mmctx.analysis import model_complexity
from mmctx.utils import register_all_modules, task_scope


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Params and FLOPs of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape', type=int, nargs=2, default=[1280, 800], metavar=('H', 'W'),
        help='input image size (default 1280 800, the size mmdet 1.x, and '
        'the papers that used it, measured at)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, xxx=yyy')
    return parser.parse_args(argv)


def build_model(cfg: Config) -> torch.nn.Module:
    """The config's model, on the CPU, SyncBN reverted, no weights loaded."""
    init_default_scope(task_scope(cfg))
    model = MODELS.build(cfg.model)
    return revert_sync_batchnorm(model)


def main(argv=None):
    register_all_modules()
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg)
    result = model_complexity(model, args.shape)
    line = '=' * 48
    print(line)
    print(f'Config:       {args.config}')
    print(f'Input shape:  {args.shape[0]} x {args.shape[1]}')
    print(f'Params:       {result["trainable"] / 1e6:.2f} M trainable '
          f'({result["params"] / 1e6:.2f} M in all)')
    print(f'FLOPs:        {result["flops"] / 1e9:.2f} G multiply-adds, attention products '
          'included')
    print(f'              {result["flops_conv"] / 1e9:.2f} G of conv / linear layers only '
          '(no attention products)')
    print(line)
    return result


if __name__ == '__main__':
    main()
