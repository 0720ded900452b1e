"""Draw the attention map of chosen query points of every context block.

    python tools/analysis_tools/visualize_attention.py CONFIG CHECKPOINT IMAGE \
        --points 120,80 300,200 [--out-dir work_dirs/attention]

For each mmctx block of the model (NL, SNL, GC, GCNL, ENL, SA, ISA, ...) one
PNG ``<block name>.png`` with one panel per query point: the image with the
block's attention over key positions for that query overlaid (heads
averaged), the query marked by a circle. As in Cao et al. (GCNet) Figs. 1-2 and 5, a
GC block's map is the same for every query; ISA shows its dense composite
relation (local x global, Yuan et al. (OCNet) Fig. 6).
"""
import argparse
import os
import os.path as osp

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import DictAction

from mmctx.analysis import (BlockRecorder, infer_image, load_model,
                            query_attention_map)


def parse_point(text):
    try:
        x, y = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'a point is "x,y" in pixels, got {text!r}')
    return x, y


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Visualize attention maps')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--points', type=parse_point, nargs='+', required=True,
                        help='query points "x,y" in pixels of IMAGE')
    parser.add_argument('--out-dir', default='work_dirs/attention')
    parser.add_argument('--alpha', type=float, default=0.5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def input_geometry(sample):
    """(scale (sx, sy) from image to network input, (H, W) of the padded input)."""
    meta = sample.metainfo
    img_h, img_w = meta['img_shape'][:2]
    ori_h, ori_w = meta['ori_shape'][:2]
    pad = meta.get('batch_input_shape', meta.get('pad_shape', meta['img_shape']))
    return (img_w / ori_w, img_h / ori_h), tuple(pad[:2]), (img_h, img_w)


def overlay(image, heat, point, alpha):
    """``image`` with ``heat`` (same H x W, any range) drawn over it and ``point`` marked."""
    heat = heat - heat.min()
    heat = heat / heat.max() if heat.max() > 0 else heat
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    out = cv2.addWeighted(image, 1 - alpha, colored, alpha, 0)
    center = (int(round(point[0])), int(round(point[1])))
    cv2.circle(out, center, max(3, image.shape[0] // 60), (255, 255, 255), -1)
    cv2.circle(out, center, max(3, image.shape[0] // 60), (0, 0, 0), 1)
    return out


def render_block(block, x, image, points, geometry, alpha):
    """One panel per point, side by side, for the block call with input ``x``."""
    (sx, sy), (pad_h, pad_w), (img_h, img_w) = geometry
    ori_h, ori_w = image.shape[:2]
    panels = []
    for px, py in points:
        rel = (px * sx / pad_w, py * sy / pad_h)
        att = query_attention_map(block, x[:1], rel)
        heat = F.interpolate(att[None, None], size=(pad_h, pad_w), mode='bilinear',
                             align_corners=False)[0, 0, :img_h, :img_w]
        heat = cv2.resize(heat.numpy(), (ori_w, ori_h), interpolation=cv2.INTER_LINEAR)
        panels.append(overlay(image, heat, (px, py), alpha))
    return np.concatenate(panels, axis=1)


def main(argv=None):
    args = parse_args(argv)
    image = cv2.imread(args.image)
    if image is None:
        raise FileNotFoundError(f'cannot read image {args.image}')
    h, w = image.shape[:2]
    for px, py in args.points:
        if not (0 <= px < w and 0 <= py < h):
            raise ValueError(f'point ({px}, {py}) lies outside the {w}x{h} image')
    model = load_model(args.config, args.checkpoint, args.device, args.cfg_options)
    with BlockRecorder(model) as recorder, torch.no_grad():
        sample = infer_image(model, image)
    geometry = input_geometry(sample)
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    for name, calls in recorder.records.items():
        if not calls:
            continue
        block = recorder.blocks[name]
        picture = render_block(block, calls[0][0].cpu(), image, args.points,
                               geometry, args.alpha)
        path = osp.join(args.out_dir, f'{name}.png')
        cv2.imwrite(path, picture)
        written.append(path)
        print(f'{type(block).__name__:<32} {path}')
    return written


if __name__ == '__main__':
    main()
