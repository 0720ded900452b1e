"""End to end through the real tools: train -> checkpoint -> resume -> test.

Each step runs ``tools/train.py`` / ``tools/test.py`` in a subprocess, as a
user would, on the session's tiny synthetic data set and CPU-sized models.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from tools_helpers import (REPO, SEMANTIC, TEST, TRAIN, metric, run_tool,
                           shapes_detector_config, write_config)




def test_detection_train_resume_test(tmp_path, shapes_root):
    cfg = write_config(tmp_path, shapes_detector_config(shapes_root, keep=3))
    work = str(tmp_path / 'work')

    # 1. train 2 of 4 iterations (an interrupted run)
    run_tool(TRAIN, cfg, '--work-dir', work, '--cfg-options',
             'train_cfg.max_iters=2')
    ckpt2 = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt2)

    # 2. resume from it: iterations 3-4 only, state carried over
    _, out = run_tool(TRAIN, cfg, '--work-dir', work, '--resume', ckpt2)
    assert 'resumed' in out.lower()
    assert re.search(r'Iter\(train\) \[3/4\]', out)
    assert not re.search(r'Iter\(train\) \[1/4\]', out)
    ckpt4 = osp.join(work, 'iter_4.pth')
    state = torch.load(ckpt4, map_location='cpu', weights_only=False)
    assert state['meta']['iter'] == 4
    # AdamW's step count goes on from the resumed optimizer state
    steps = {int(s['step']) for s in state['optimizer']['state'].values()}
    assert steps == {4}

    # 2b. --resume without a value picks the work dir's latest checkpoint
    _, out = run_tool(TRAIN, cfg, '--work-dir', work, '--resume',
                      '--cfg-options', 'train_cfg.max_iters=5')
    assert re.search(r'Iter\(train\) \[5/5\]', out)
    assert not re.search(r'Iter\(train\) \[[1-4]/5\]', out)

    # 3. evaluate the checkpoint with the COCO metric
    vis = tmp_path / 'vis'
    _, out = run_tool(TEST, cfg, ckpt4, '--work-dir', str(tmp_path / 'test'),
                      '--out', str(tmp_path / 'pred.pkl'),
                      '--show-dir', str(vis))
    for name in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_s'):
        assert 0.0 <= metric(out, name) <= 1.0
    import pickle
    with open(tmp_path / 'pred.pkl', 'rb') as f:
        assert len(pickle.load(f)) == 4  # one entry per validation scene
    assert len(list(vis.rglob('*.png'))) == 4


SEG_CONFIG = '''
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', {semantic!r},
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
data_root = {root!r}
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16,
                  norm_cfg=norm_cfg),
    decode_head=dict(in_channels=128, channels=16, num_classes=6,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, channels=8, num_classes=6,
                        norm_cfg=norm_cfg))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2))
'''


def test_segmentation_train_then_test(tmp_path, shapes_root):
    cfg = write_config(tmp_path,
                       SEG_CONFIG.format(semantic=SEMANTIC, root=shapes_root))
    work = str(tmp_path / 'work')
    run_tool(TRAIN, cfg, '--work-dir', work)
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    pred, vis = tmp_path / 'pred', tmp_path / 'vis'
    _, out = run_tool(TEST, cfg, ckpt, '--work-dir', str(tmp_path / 'test'),
                      '--out', str(pred), '--show-dir', str(vis))
    assert 0.0 <= metric(out, 'mIoU') <= 100.0
    assert 'floor' in out  # the per-class IoU table names the classes
    # predicted label maps and painted images, one per validation scene
    assert len(list(pred.glob('*.png'))) == 4
    assert len(list(vis.rglob('*.png'))) == 4


def test_unknown_module_is_named(tmp_path, shapes_root):
    text = shapes_detector_config(shapes_root, keep=3) + '''
model = dict(backbone=dict(plugins=[dict(
    cfg=dict(type='GlobalContextBlokk'), stages=(False, True, True, True),
    position='after_conv3')]))
'''
    rc, out = run_tool(TRAIN, write_config(tmp_path, text), '--work-dir',
                       str(tmp_path / 'work'), expect_ok=False)
    assert rc != 0
    assert 'GlobalContextBlokk' in out.strip().splitlines()[-1]


def test_unknown_custom_import_is_named(tmp_path, shapes_root):
    text = shapes_detector_config(shapes_root, keep=3) + '''
custom_imports = dict(imports=['mmctx', 'mmctx.models.no_such_family'],
                      allow_failed_imports=False)
'''
    rc, out = run_tool(TRAIN, write_config(tmp_path, text), '--work-dir',
                       str(tmp_path / 'work'), expect_ok=False)
    assert rc != 0
    assert 'mmctx.models.no_such_family' in out


def test_config_without_task_scope_is_refused(tmp_path):
    cfg = write_config(tmp_path, "model = dict(type='RetinaNet')\n")
    rc, out = run_tool(TRAIN, cfg, expect_ok=False)
    assert rc != 0 and 'default_scope' in out


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_and_test_scripts(tmp_path, shapes_root):
    """tools/dist_train.sh and dist_test.sh with 2 processes (gloo on CPU)."""
    cfg = write_config(tmp_path, shapes_detector_config(shapes_root, keep=3))
    work = str(tmp_path / 'work')
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable)

    def run(script, *args):
        env['PORT'] = str(_free_port())
        proc = subprocess.run(
            ['bash', osp.join(REPO, 'tools', script), *args], cwd=REPO,
            env=env, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-4000:]
        return out

    out = run('dist_train.sh', cfg, '2', '--work-dir', work,
              '--cfg-options', 'train_cfg.max_iters=2')
    assert re.search(r'Iter\(train\) \[2/2\]', out)
    assert 'Distributed training: True' in out and 'GPU number: 2' in out
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.isfile(ckpt)
    out = run('dist_test.sh', cfg, ckpt, '2', '--work-dir',
              str(tmp_path / 'test'))
    assert 0.0 <= metric(out, 'coco/bbox_mAP_50') <= 1.0
