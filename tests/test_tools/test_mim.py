"""OpenMIM (``mim train`` / ``mim test``) with mmctx configs, as docs/mim.md shows.

``mim train mmdet CONFIG`` runs mmdet's own ``tools/train.py`` (shipped in
``mmdet/.mim/tools``), which knows nothing of mmctx: mmctx is imported only
because the config names it in ``custom_imports``. These smoke tests run the
real ``mim`` command in a subprocess on the session's tiny shapes data set,
2 iterations of a CPU-sized model each.
"""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

from tools_helpers import REPO, metric, write_config

pytest.importorskip('mim', reason='openmim is in requirements-test.txt')

DEMO = osp.join(REPO, 'configs', 'demo', 'retinanet_r50w16-gcb_fpn64_1xb4-1200it_shapes-128.py')
SEMANTIC = osp.join(REPO, 'configs', '_base_', 'datasets', 'shapes_semantic.py')

# the `mim` entry point of this interpreter's environment
MIM = osp.join(osp.dirname(sys.executable), 'mim')

DET_CONFIG = '''
_base_ = {demo!r}
data_root = {root!r}
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=4, val_interval=100)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
# after 2 iterations no score passes the default 0.05: keep every box
model = dict(test_cfg=dict(score_thr=0.0))
'''

# mmseg's FCN R-50 fragment shrunk to a CPU-sized ResNet-18, with mmctx's
# ContextBlockHead (a GC block between the FCN head's convs) as decode head
SEG_CONFIG = '''
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', {semantic!r},
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
custom_imports = dict(imports=['mmctx'], allow_failed_imports=False)
data_root = {root!r}
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16,
                  norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True, type='ContextBlockHead', in_channels=128, in_index=3,
        channels=16, num_classes=6, dropout_ratio=0.1, norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    auxiliary_head=None)
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2))
'''


def run_mim(*args, cwd, expect_ok=True):
    """Run ``mim *args`` on one thread; returns ``(returncode, output)``."""
    if not osp.isfile(MIM):
        pytest.skip(f'no mim entry point at {MIM}')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([MIM, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    if expect_ok:
        assert proc.returncode == 0, out[-4000:]
    return proc.returncode, out


def test_mim_train_then_test_mmdet(tmp_path, shapes_root):
    cfg = write_config(tmp_path, DET_CONFIG.format(demo=DEMO, root=shapes_root))
    _, out = run_mim('train', 'mmdet', cfg, '--work-dir', 'work',
                     '--cfg-options', 'train_cfg.max_iters=2', cwd=tmp_path)
    # mmdet's own train script ran (not ours) and trained mmctx's GC block
    assert 'mmdet/.mim/tools/train.py' in out
    assert re.search(r'Iter\(train\) \[2/2\]', out)
    assert 'GlobalContextBlock' in out  # the dumped config names the plugin
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    assert ckpt.is_file()
    val_map50 = metric(out, 'coco/bbox_mAP_50')

    _, out = run_mim('test', 'mmdet', cfg, '--checkpoint', str(ckpt),
                     '--work-dir', 'test', cwd=tmp_path)
    assert 'mmdet/.mim/tools/test.py' in out
    assert 'Load checkpoint from' in out
    # torch >= 2.6 refuses mmengine's checkpoints (numpy values) unless
    # mmctx's safe loader, registered on import, handles them
    assert 'Weights only load failed' not in out
    for name in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_s'):
        assert 0.0 <= metric(out, name) <= 1.0
    # the same weights on the same 4 scenes: the validation at the end of
    # training and the test score alike
    assert metric(out, 'coco/bbox_mAP_50') == val_map50


def test_mim_train_then_test_mmsegmentation(tmp_path, shapes_root):
    cfg = write_config(tmp_path,
                       SEG_CONFIG.format(semantic=SEMANTIC, root=shapes_root))
    _, out = run_mim('train', 'mmsegmentation', cfg, '--work-dir', 'work',
                     cwd=tmp_path)
    assert 'mmseg/.mim/tools/train.py' in out
    assert re.search(r'Iter\(train\) \[2/2\]', out)
    ckpt = tmp_path / 'work' / 'iter_2.pth'
    assert ckpt.is_file()
    val_miou = metric(out, 'mIoU')

    _, out = run_mim('test', 'mmsegmentation', cfg, '--checkpoint', str(ckpt),
                     '--work-dir', 'test', cwd=tmp_path)
    assert 'Load checkpoint from' in out
    miou = metric(out, 'mIoU')
    assert 0.0 <= miou <= 100.0
    assert 'floor' in out  # the per-class IoU table names the classes
    assert miou == val_miou


def test_mim_without_custom_imports_does_not_know_mmctx(tmp_path, shapes_root):
    """mmdet's train script never imports mmctx itself: a config that drops
    ``custom_imports`` cannot build mmctx's modules under mim."""
    text = DET_CONFIG.format(demo=DEMO, root=shapes_root) + (
        'custom_imports = None\n')
    rc, out = run_mim('train', 'mmdet', write_config(tmp_path, text),
                      '--work-dir', 'work', cwd=tmp_path, expect_ok=False)
    assert rc != 0
    # the plugin lookup fails; without mmctx's compat fix mmcv 2.1's message
    # does not even name the type ("Cannot find None in registry")
    assert re.search(r"KeyError: .*in registry", out), out[-2000:]
    assert not (tmp_path / 'work' / 'iter_2.pth').exists()


def test_mim_finds_the_task_packages():
    """``mim train`` runs the tools that mmdet / mmseg ship in ``.mim/``."""
    import mmdet
    import mmseg
    for pkg in (mmdet, mmseg):
        tools = osp.join(osp.dirname(pkg.__file__), '.mim', 'tools')
        for script in ('train.py', 'test.py'):
            assert osp.isfile(osp.join(tools, script)), (tools, script)
    assert shutil.which('mim', path=osp.dirname(sys.executable)) == MIM
