"""Every checkpoint any part of a config's model loads fits that model's backbone.

mmdet's Faster R-CNN C4 base gives the RoI head's shared C5 stage its own
``init_cfg`` (ResNet-50): a config that only swaps the backbone's checkpoint
for ResNet-101 fine-tunes ResNet-50's layer4. This walk finds every
checkpoint of every config (``init_cfg`` of type ``Pretrained`` anywhere in
the model, mmseg's ``model.pretrained``, ``BottleneckAttentionInit``) and
checks that the architecture it names (depth, style, width) is the
backbone's, and the shared head's where there is one.
"""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
PATHS = sorted(p for p in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
               if '_base_' not in p)


def checkpoint_arch(name):
    """(family, depth or width, style) that a checkpoint name stands for.

    ``torchvision://resnet50`` -> ('resnet', 50, 'pytorch'),
    ``open-mmlab://detectron2/resnet101_caffe`` -> ('resnet', 101, 'caffe'),
    ``open-mmlab://resnet50_v1c`` -> ('resnet', 50, 'v1c'),
    ``open-mmlab://resnext101_32x4d`` -> ('resnext-32x4d', 101, 'pytorch'),
    ``open-mmlab://msra/hrnetv2_w48`` -> ('hrnet', 48, 'pytorch').
    An unknown name fails: add it here when a config starts using it.
    """
    m = re.fullmatch(r'(?:torchvision|open-mmlab)://(?:detectron2?/|msra/)?'
                     r'(resnet|resnext)(\d+)(?:_(\d+x\d+d))?(?:_(caffe|v1c))?', name)
    if m:
        family = m.group(1) + (f'-{m.group(3)}' if m.group(3) else '')
        return family, int(m.group(2)), m.group(4) or 'pytorch'
    m = re.fullmatch(r'open-mmlab://msra/hrnetv2_w(\d+)', name)
    if m:
        return 'hrnet', int(m.group(1)), 'pytorch'
    raise AssertionError(f'unknown checkpoint {name!r}: teach checkpoint_arch its architecture')


def backbone_arch(cfg):
    """(family, depth or width, style) of a backbone / shared-head config."""
    kind = cfg.get('type', '')
    if 'HRNet' in kind:
        return 'hrnet', cfg.extra.stage2.num_channels[0], 'pytorch'
    family = 'resnet'
    if 'ResNeXt' in kind:
        family = f'resnext-{cfg.groups}x{cfg.base_width}d'
    style = 'v1c' if kind.endswith('V1c') else cfg.get('style', 'pytorch')
    return family, cfg.depth, style


def loaded_checkpoints(node, where='model'):
    """[(where, checkpoint)] of every checkpoint in a (nested) model config."""
    found = []
    if isinstance(node, dict):
        if node.get('type') in ('Pretrained', 'BottleneckAttentionInit') and node.get('checkpoint'):
            found.append((where, node['checkpoint']))
        for key, value in node.items():
            if key == 'pretrained' and isinstance(value, str):
                found.append((f'{where}.pretrained', value))
            else:
                found += loaded_checkpoints(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += loaded_checkpoints(value, f'{where}[{i}]')
    return found


def test_checkpoint_names_are_parsed():
    assert checkpoint_arch('torchvision://resnet101') == ('resnet', 101, 'pytorch')
    assert checkpoint_arch('open-mmlab://detectron2/resnet50_caffe') == ('resnet', 50, 'caffe')
    assert checkpoint_arch('open-mmlab://detectron/resnet50_caffe') == ('resnet', 50, 'caffe')
    assert checkpoint_arch('open-mmlab://resnet101_v1c') == ('resnet', 101, 'v1c')
    assert checkpoint_arch('open-mmlab://resnext101_64x4d') == ('resnext-64x4d', 101, 'pytorch')
    assert checkpoint_arch('open-mmlab://msra/hrnetv2_w48') == ('hrnet', 48, 'pytorch')
    with pytest.raises(AssertionError, match='unknown checkpoint'):
        checkpoint_arch('https://example.org/weights.pth')


def test_the_walk_finds_a_wrong_shared_head_checkpoint():
    """The R-101 C4 bug as it was: backbone R-101, shared head left at R-50."""
    cfg = Config.fromfile(osp.join(CONFIGS, 'gsa', 'faster-rcnn_r101-caffe-c4_adam-sgd-1x_coco-600.py'))
    cfg.model.roi_head.shared_head.init_cfg.checkpoint = 'open-mmlab://detectron2/resnet50_caffe'
    with pytest.raises(AssertionError, match='shared_head'):
        check_config(cfg)


def check_config(cfg):
    model = cfg.model
    found = loaded_checkpoints(model)
    backbone = backbone_arch(model.backbone)
    shared = model.get('roi_head', {}).get('shared_head')
    if shared:
        # the C5 stage of a C4 detector is part of the same network
        assert shared.depth == model.backbone.depth and shared.style == model.backbone.style, \
            f'shared head {shared.depth}/{shared.style} vs backbone {backbone}'
    for where, checkpoint in found:
        assert checkpoint_arch(checkpoint) == backbone, \
            f'{where} loads {checkpoint} {checkpoint_arch(checkpoint)}, backbone is {backbone}'
    return found


@pytest.mark.parametrize('path', PATHS, ids=lambda p: osp.relpath(p, CONFIGS))
def test_every_checkpoint_fits_the_backbone(path):
    cfg = Config.fromfile(path)
    found = check_config(cfg)
    if 'demo' not in path:  # the demo trains from scratch; every paper config starts pretrained
        assert found, 'no pretrained checkpoint found'
    if cfg.model.get('roi_head', {}).get('shared_head'):
        assert any('shared_head' in where for where, _ in found)
