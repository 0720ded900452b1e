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

from tools_helpers import (metric, shapes_detector_config, shapes_segmentor_config,
                           write_config)

pytest.importorskip('mim', reason='openmim is in requirements-test.txt')


# the `mim` entry point of this interpreter's environment
MIM = osp.join(osp.dirname(sys.executable), 'mim')


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
    cfg = write_config(tmp_path, shapes_detector_config(shapes_root))
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
                       shapes_segmentor_config(shapes_root))
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
    text = shapes_detector_config(shapes_root) + (
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
