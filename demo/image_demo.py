"""Run a detector or segmentor of mmctx on one image and draw its prediction.

    python demo/image_demo.py IMAGE CONFIG [--weights CKPT] [--out-dir DIR] \
        [--device cpu] [--score-thr 0.3] [--show-attention X,Y ...]

The task library is picked from the config's ``default_scope``: ``mmdet``
configs (detection, instance and panoptic segmentation) run through mmdet's
``DetInferencer``, ``mmseg`` configs (semantic segmentation) through mmseg's
``MMSegInferencer``. The drawn prediction is written to
``DIR/<image name>.png``, the size of IMAGE.

With ``--show-attention X,Y`` (pixels of IMAGE; several points give several
panels) the attention map of that query point is also drawn for every mmctx
attention block of the model (NL, GC, GCNL, ENL, OC, ...), one PNG per block in
``DIR/<image name>_attention/<block name>.png`` with the query marked (see
:mod:`mmctx.analysis.attention_maps`, shared with
``tools/analysis_tools/visualize_attention.py``).

See docs/demo.md.
"""
import argparse
import os
import os.path as osp
import sys
import warnings

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

import cv2  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from mmctx.analysis.attention_stats import context_blocks  # noqa: E402
from mmctx.analysis.attention_maps import (check_points, parse_point,  # noqa: E402
                                           save_attention_maps)
from mmctx.utils import register_all_modules, task_scope  # noqa: E402


def point_arg(text):
    try:
        return parse_point(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Draw the prediction of a detector / segmentor on one image')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file (default_scope mmdet or mmseg)')
    parser.add_argument('--weights', help='checkpoint file (without: random weights)')
    parser.add_argument('--out-dir', default='outputs', help='where to write the pictures')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='mmdet: draw boxes / masks scoring at least this')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='mmseg: opacity of the drawn label map')
    parser.add_argument('--show-attention', type=point_arg, nargs='+', metavar='X,Y',
                        help='also draw the attention maps of these query points '
                        '(pixels of IMAGE) for every attention block')
    parser.add_argument('--alpha', type=float, default=0.5,
                        help='opacity of the attention maps')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    return parser.parse_args(argv)


def check_inputs(args):
    """Fail before any model is built: files that are missing, points outside."""
    if not osp.isfile(args.image):
        raise FileNotFoundError(f'image not found: {args.image}')
    image = cv2.imread(args.image)
    if image is None:
        raise ValueError(f'cannot read {args.image} as an image')
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config not found: {args.config}')
    if args.weights is not None and not osp.isfile(args.weights):
        raise FileNotFoundError(f'checkpoint (--weights) not found: {args.weights}')
    if args.show_attention:
        check_points(args.show_attention, image, f'image {args.image}')
    return image


def config_metainfo(cfg, scope):
    """The metainfo of the config's test set (classes, palette, thing / stuff
    classes), without loading its annotations; None if it cannot be built."""
    import copy
    if scope == 'mmdet':
        from mmdet.registry import DATASETS
    else:
        from mmseg.registry import DATASETS
    try:
        dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
        dataset_cfg['lazy_init'] = True
        meta = dict(DATASETS.build(dataset_cfg).metainfo)
    except Exception as err:  # noqa: BLE001  (only the class names are at stake)
        warnings.warn(f'cannot read the class names of the test set of the config: {err}')
        return None
    return meta if 'classes' in meta else None


def build_inferencer(cfg, weights, device, scope):
    if scope == 'mmdet':
        from mmdet.apis import DetInferencer
        inferencer = DetInferencer(cfg, weights, device=device, show_progress=False)
    else:
        from mmseg.apis import MMSegInferencer
        inferencer = MMSegInferencer(cfg, weights, device=device)
    if weights is None:
        warnings.warn('no --weights: the prediction comes from random weights')
        meta = config_metainfo(cfg, scope)
        if meta is not None:  # the library's default would be COCO / Cityscapes names
            meta.setdefault('palette', inferencer.model.dataset_meta.get('palette'))
            if scope == 'mmdet':
                inferencer.model.dataset_meta = meta
                inferencer.visualizer.dataset_meta = meta
            else:  # MMSegInferencer passes them to SegLocalVisualizer.set_dataset_meta
                inferencer.model.dataset_meta = dict(classes=meta['classes'],
                                                     palette=meta['palette'])
    return inferencer


def draw_prediction(inferencer, image_path, scope, args):
    """The image with the prediction drawn, RGB, the image's size."""
    if scope == 'mmdet':
        result = inferencer(image_path, return_vis=True, no_save_vis=True,
                            pred_score_thr=args.score_thr)
    else:
        result = inferencer(image_path, return_vis=True, opacity=args.opacity)
    vis = result['visualization']
    return vis[0] if isinstance(vis, list) else vis


def main(argv=None):
    """Returns the paths written: the drawn prediction first, then the attention maps."""
    register_all_modules()
    args = parse_args(argv)
    image = check_inputs(args)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    scope = task_scope(cfg)
    inferencer = build_inferencer(cfg, args.weights, args.device, scope)
    if args.show_attention and not context_blocks(inferencer.model):
        raise ValueError(f'--show-attention: the model of {args.config} has no mmctx '
                         'attention block (no module with get_attention), so there '
                         'is no attention map to show')

    name = osp.splitext(osp.basename(args.image))[0]
    os.makedirs(args.out_dir, exist_ok=True)
    out = osp.join(args.out_dir, f'{name}.png')
    vis = draw_prediction(inferencer, args.image, scope, args)
    cv2.imwrite(out, cv2.cvtColor(vis, cv2.COLOR_RGB2BGR))
    print(f'prediction: {out}')
    written = [out]
    if args.show_attention:
        written += save_attention_maps(inferencer.model, image, args.show_attention,
                                       osp.join(args.out_dir, f'{name}_attention'),
                                       args.alpha)
    return written


if __name__ == '__main__':
    main()
