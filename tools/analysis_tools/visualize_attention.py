"""Draw the attention map of chosen query points of every context block.

    python tools/analysis_tools/visualize_attention.py CONFIG CHECKPOINT IMAGE \
        --points 120,80 300,200 [--out-dir work_dirs/attention]

For each mmctx block of the model (NL, SNL, GC, GCNL, ENL, SA, ISA, ...) one
PNG ``<block name>.png`` with one panel per query point: the image with the
block's attention over key positions for that query overlaid (heads
averaged), the query marked by a circle. As in Cao et al. (GCNet) Figs. 1-2 and 5, a
GC block's map is the same for every query; ISA shows its dense composite
relation (local x global, Yuan et al. (OCNet) Fig. 6). The drawing is
:mod:`mmctx.analysis.attention_maps`, shared with ``demo/image_demo.py
--show-attention``.
"""
import argparse

import cv2
from mmengine.config import DictAction

from mmctx.analysis import load_model
from mmctx.analysis.attention_maps import check_points, parse_point, save_attention_maps


def point_arg(text):
    try:
        return parse_point(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualize attention maps')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--points', type=point_arg, nargs='+', required=True,
                        help='query points "x,y" in pixels of IMAGE')
    parser.add_argument('--out-dir', default='work_dirs/attention')
    parser.add_argument('--alpha', type=float, default=0.5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    image = cv2.imread(args.image)
    if image is None:
        raise FileNotFoundError(f'cannot read image {args.image}')
    check_points(args.points, image, args.image)
    model = load_model(args.config, args.checkpoint, args.device, args.cfg_options)
    return save_attention_maps(model, image, args.points, args.out_dir, args.alpha)


if __name__ == '__main__':
    main()
