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
