"""Helpers of the tests that run ``tools/train.py`` / ``tools/test.py`` as a user would.

Importable from every test directory (``tests/`` is on ``sys.path`` through
``tests/conftest.py``): ``from tools_helpers import run_tool, metric``.
"""
import os
import os.path as osp
import re
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')


def run_tool(*args, expect_ok=True, timeout=600):
    """Run ``python *args`` from the repository root on one thread.

    Returns ``(returncode, stdout + stderr)``; with ``expect_ok`` a non-zero
    exit fails the test and shows the end of the output.
    """
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if expect_ok:
        assert proc.returncode == 0, out[-4000:]
    return proc.returncode, out


def metric(out, name):
    """Last value of a metric as mmengine logs it (``name: value``)."""
    found = re.findall(re.escape(name) + r': (-?[0-9.]+)', out)
    assert found, f'{name} not in the output'
    return float(found[-1])


def write_config(tmp_path, text, name='cfg.py'):
    """Write a config text to ``tmp_path / name``; returns its path as a str."""
    path = tmp_path / name
    path.write_text(text)
    return str(path)


DEMO = osp.join(REPO, 'configs', 'demo', 'retinanet_r50w16-gcb_fpn64_1xb4-400it_shapes-128.py')
SEMANTIC = osp.join(REPO, 'configs', '_base_', 'datasets', 'shapes_semantic.py')


def shapes_detector_config(root, keep=1, iters=4):
    """The demo detector (RetinaNet, GC blocks) on the shapes data at ``root``: batch 2,
    ``iters`` iterations, a checkpoint every 2 (the last ``keep`` kept: the demo's 1 by default, -1 for all),
    logged every iteration; ``score_thr`` 0, since after a few iterations no score passes
    the default 0.05 and the COCO metric needs detections to score. Returns the text."""
    return f'''
_base_ = {DEMO!r}
data_root = {root!r}
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters={iters}, val_interval=100)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=2, max_keep_ckpts={keep}))
model = dict(test_cfg=dict(score_thr=0.0))
'''


def shapes_segmentor_config(root, head='ContextBlockHead', extra='', iters=2,
                            auxiliary_head='None'):
    """mmseg's FCN R-50 fragment shrunk to a CPU-sized ResNet-18 (16 channels) on the shapes
    semantic data at ``root``, with ``head`` as decode head (its own arguments in ``extra``,
    e.g. ``"num_heads=2,"``; mmctx's ContextBlockHead, a GC block between the FCN head's
    convs, by default) and ``auxiliary_head`` (config text); ``iters`` iterations, one
    checkpoint at the end, logged every iteration. Returns the text."""
    return f'''
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', {SEMANTIC!r},
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
data_root = {root!r}
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True, type={head!r}, in_channels=128, in_index=3,
        channels=16, dropout_ratio=0.1, num_classes=6, norm_cfg=norm_cfg,
        align_corners=False, {extra}
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head={auxiliary_head})
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={iters}, val_interval=100)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval={iters}))
'''
