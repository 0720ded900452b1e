"""Draw what the context blocks of a model attend to from chosen query points.

Shared by ``tools/analysis_tools/visualize_attention.py`` and
``demo/image_demo.py --show-attention``: for every mmctx block of the model
(anything with the block API's ``get_attention``: NL, SNL, GC, GCNL, ENL, SA,
ISA, ...) one picture with one panel per query point, the image with the
block's attention over key positions for that query overlaid (heads
averaged) and the query marked by a circle. As in Cao et al., *Global Context
Networks*, Figs. 1-2 and 5, a GC block's map is the same for every query; ISA
shows its dense composite relation (local x global, Yuan et al., *OCNet:
Object Context for Semantic Segmentation*, Fig. 6).
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention_stats import BlockRecorder, context_blocks, query_attention_map
from .inference import infer_image

__all__ = [
    'parse_point', 'check_points', 'input_geometry', 'overlay', 'render_block',
    'attention_pictures', 'save_attention_maps'
]

Point = Tuple[float, float]


def parse_point(text: str) -> Point:
    """``'x,y'`` (pixels) -> ``(x, y)``; a ValueError naming the text otherwise."""
    try:
        x, y = (float(v) for v in text.split(','))
    except ValueError:
        raise ValueError(f'a point is "x,y" in pixels, got {text!r}') from None
    return x, y


def check_points(points: Sequence[Point], image: np.ndarray, name: str = 'image') -> None:
    """A ValueError naming the point and the image size if a point lies outside."""
    h, w = image.shape[:2]
    for px, py in points:
        if not (0 <= px < w and 0 <= py < h):
            raise ValueError(f'point ({px:g}, {py:g}) lies outside the {w}x{h} {name} '
                             f'(x must be in [0, {w}), y in [0, {h}))')


def input_geometry(sample):
    """(scale (sx, sy) from image to network input, (H, W) of the padded input,
    (H, W) of the resized image inside it), from a prediction's metainfo."""
    meta = sample.metainfo
    img_h, img_w = meta['img_shape'][:2]
    ori_h, ori_w = meta['ori_shape'][:2]
    pad = meta.get('batch_input_shape', meta.get('pad_shape', meta['img_shape']))
    return (img_w / ori_w, img_h / ori_h), tuple(pad[:2]), (img_h, img_w)


def overlay(image: np.ndarray, heat: np.ndarray, point: Point, alpha: float) -> np.ndarray:
    """``image`` with ``heat`` (same H x W, any range) drawn over it and ``point`` marked."""
    heat = heat - heat.min()
    heat = heat / heat.max() if heat.max() > 0 else heat
    colored = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    out = cv2.addWeighted(image, 1 - alpha, colored, alpha, 0)
    center = (int(round(point[0])), int(round(point[1])))
    cv2.circle(out, center, max(3, image.shape[0] // 60), (255, 255, 255), -1)
    cv2.circle(out, center, max(3, image.shape[0] // 60), (0, 0, 0), 1)
    return out


def render_block(block: nn.Module, x: torch.Tensor, image: np.ndarray,
                 points: Sequence[Point], geometry, alpha: float) -> np.ndarray:
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


def attention_pictures(model: nn.Module, image: np.ndarray, points: Sequence[Point],
                       alpha: float = 0.5) -> 'OrderedDict[str, np.ndarray]':
    """Block name -> BGR picture (one panel per point) of every block the
    model calls on ``image`` (BGR), run through the config's test pipeline.

    Raises a ValueError naming the config when the model has no mmctx block.
    """
    if not context_blocks(model):
        cfg = getattr(model, 'cfg', None)
        source = getattr(cfg, 'filename', None) or 'the config'
        raise ValueError(f'{source}: the model has no mmctx attention block '
                         '(no module with get_attention), so there is no '
                         'attention map to show')
    check_points(points, image)
    with BlockRecorder(model) as recorder, torch.no_grad():
        sample = infer_image(model, image)
    geometry = input_geometry(sample)
    pictures = OrderedDict()
    for name, calls in recorder.records.items():
        if calls:
            pictures[name] = render_block(recorder.blocks[name], calls[0][0].cpu(), image,
                                          points, geometry, alpha)
    return pictures


def save_attention_maps(model: nn.Module, image: np.ndarray, points: Sequence[Point],
                        out_dir: str, alpha: float = 0.5, verbose: bool = True) -> List[str]:
    """Write :func:`attention_pictures` as ``out_dir/<block name>.png``; returns the paths."""
    pictures = attention_pictures(model, image, points, alpha)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, picture in pictures.items():
        path = osp.join(out_dir, f'{name}.png')
        cv2.imwrite(path, picture)
        written.append(path)
        if verbose:
            print(f'{type(model.get_submodule(name)).__name__:<32} {path}')
    return written
