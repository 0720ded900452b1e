"""Checkpoints through the tools as a user runs them: hostile checkpoints
never run (tools/test.py, train.py --resume, load_from=, attention_stats.py)
unless --unsafe-load says so; a kill -9 in the middle of writing a checkpoint
leaves a resumable work dir; --resume, tools/test.py and --amp fail loudly
where they used to go on silently."""
import importlib.util
import os
import os.path as osp
import signal
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

from tools_helpers import (REPO, TEST, TRAIN, metric, run_tool, shapes_detector_config,
                           write_config)

from mmctx.utils.checkpoint import UNSAFE_LOAD_ENV, UnsafeCheckpointError

STATS = osp.join(REPO, 'tools', 'analysis_tools', 'attention_stats.py')


class Payload:
    """Unpickling this calls ``builtins.exec``, which writes ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").write("payload ran")', ))


def _tool(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def train_tool():
    return _tool(TRAIN, 'mmctx_tool_train_ckpt')


@pytest.fixture(scope='module')
def test_tool():
    return _tool(TEST, 'mmctx_tool_test_ckpt')


@pytest.fixture(autouse=True)
def safe_by_default(monkeypatch):
    """Full unpickling off at the start; the tools' --unsafe-load sets the
    variable in this process: monkeypatch takes it back afterwards."""
    monkeypatch.setenv(UNSAFE_LOAD_ENV, '0')


@pytest.fixture
def cfg(tmp_path, shapes_root):
    return write_config(tmp_path, shapes_detector_config(shapes_root, keep=1))


def _model_state(cfg_path):
    """The state dict of the config's model, as a trained checkpoint has it."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    return MODELS.build(Config.fromfile(cfg_path).model).state_dict()


def _hostile(tmp_path, cfg_path, marker):
    """A checkpoint that fits the model, with the payload in ``meta``."""
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(meta=dict(epoch=0, iter=2, note=Payload(marker)),
                    state_dict=_model_state(cfg_path)), path)
    return path


# ---------------------------------------------------------------- hostile checkpoints


def test_test_tool_refuses_then_opts_in(tmp_path, cfg, test_tool):
    marker = tmp_path / 'marker'
    evil = _hostile(tmp_path, cfg, marker)
    # as a user runs it: a separate process
    rc, out = run_tool(TEST, cfg, evil, '--work-dir', str(tmp_path / 'test'),
                       expect_ok=False)
    assert rc != 0
    last = out.strip().splitlines()[-1]
    assert 'UnsafeCheckpointError' in last and "'builtins.exec'" in last
    assert '--unsafe-load' in last
    assert not marker.exists()
    # --unsafe-load: the file is fully unpickled (the payload runs) and the
    # test goes on to its metric
    metrics = test_tool.main([cfg, evil, '--work-dir', str(tmp_path / 't2'),
                              '--unsafe-load'])
    assert marker.read_text() == 'payload ran'
    assert 0.0 <= metrics['coco/bbox_mAP_50'] <= 1.0


def test_train_tool_refuses_hostile_resume_and_load_from(tmp_path, cfg,
                                                         train_tool):
    marker = tmp_path / 'marker'
    evil = _hostile(tmp_path, cfg, marker)
    with pytest.raises(UnsafeCheckpointError, match='builtins.exec'):
        train_tool.main([cfg, '--work-dir', str(tmp_path / 'w1'),
                         '--resume', evil])
    with pytest.raises(UnsafeCheckpointError, match='builtins.exec'):
        train_tool.main([cfg, '--work-dir', str(tmp_path / 'w2'),
                         '--cfg-options', f'load_from={evil}'])
    assert not marker.exists()


def test_attention_stats_refuses_hostile_checkpoint(tmp_path, cfg):
    stats = _tool(STATS, 'mmctx_tool_attention_stats_ckpt')
    marker = tmp_path / 'marker'
    evil = _hostile(tmp_path, cfg, marker)
    with pytest.raises(UnsafeCheckpointError, match='builtins.exec'):
        stats.main([cfg, evil, '--num-images', '1'])
    assert not marker.exists()


def test_help_documents_the_options(train_tool, test_tool, capsys):
    stats = _tool(STATS, 'mmctx_tool_attention_stats_help')
    for tool in (train_tool, test_tool, stats):
        with pytest.raises(SystemExit):
            tool.parse_args(['--help'])
        text = ' '.join(capsys.readouterr().out.split())
        assert '--unsafe-load' in text and f'{UNSAFE_LOAD_ENV}=1' in text
        assert 'arbitrary code' in text
    with pytest.raises(SystemExit):
        test_tool.parse_args(['--help'])
    assert '--no-strict' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        train_tool.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'needs a CUDA GPU' in text and '"auto"' in text


# ---------------------------------------------------------------- strict test loading


def test_test_tool_rejects_another_models_checkpoint(tmp_path, cfg,
                                                     test_tool):
    """A checkpoint whose head is another model's (keys renamed, as a
    segmentor's decode head would be): an error naming keys and counts;
    --no-strict loads the rest and evaluates."""
    state = _model_state(cfg)
    other = OrderedDict(
        (k.replace('bbox_head.', 'decode_head.'), v) for k, v in state.items())
    n_head = sum(k.startswith('bbox_head.') for k in state)
    path = str(tmp_path / 'other.pth')
    torch.save(dict(meta=dict(iter=4), state_dict=other), path)
    with pytest.raises(RuntimeError) as info:
        test_tool.main([cfg, path, '--work-dir', str(tmp_path / 't')])
    message = str(info.value)
    assert f'{n_head} of the model\'s {len(state)} keys are missing' in message
    assert f'{n_head} checkpoint keys are not in the model' in message
    assert 'bbox_head.' in message and 'decode_head.' in message
    assert '--no-strict' in message
    metrics = test_tool.main([cfg, path, '--work-dir', str(tmp_path / 't2'),
                              '--no-strict'])
    assert 'coco/bbox_mAP' in metrics


# ---------------------------------------------------------------- resume


def test_resume_needs_something_to_resume(tmp_path, cfg, train_tool):
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no last_checkpoint'):
        train_tool.main([cfg, '--work-dir', str(empty), '--resume'])
    with pytest.raises(FileNotFoundError, match='does not exist.*mistyped'):
        train_tool.main([cfg, '--work-dir', str(tmp_path / 'emtpy'),
                         '--resume'])
    with pytest.raises(FileNotFoundError, match='iter_7.pth does not exist'):
        train_tool.main([cfg, '--work-dir', str(empty), '--resume',
                         str(empty / 'iter_7.pth')])
    assert os.listdir(empty) == []  # nothing trained

    # --resume auto: from scratch when there is nothing (mmengine's way)
    work = str(tmp_path / 'work')
    train_tool.main([cfg, '--work-dir', work, '--resume', 'auto',
                     '--cfg-options', 'train_cfg.max_iters=2'])
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    # ... and a run that is already finished is an error with --resume,
    # a warning with --resume auto
    with pytest.raises(RuntimeError, match=r'nothing to train.*iteration 2 '
                       r'and train_cfg\.max_iters is 2'):
        train_tool.main([cfg, '--work-dir', work, '--resume',
                         '--cfg-options', 'train_cfg.max_iters=2'])
    train_tool.main([cfg, '--work-dir', work, '--resume', 'auto',
                     '--cfg-options', 'train_cfg.max_iters=2'])
    # (the strict run raises without logging: the warning is the auto run's)
    logs = [open(osp.join(root, n)).read() for root, _, names in os.walk(work)
            for n in names if n.endswith('.log')]
    assert any('nothing to train' in log for log in logs)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU case')
def test_amp_on_cpu_says_it_needs_cuda(tmp_path, cfg, train_tool):
    with pytest.raises(RuntimeError, match='--amp needs a CUDA GPU'):
        train_tool.main([cfg, '--work-dir', str(tmp_path / 'w'), '--amp'])


# ---------------------------------------------------------------- kill -9 while saving

CHILD = '''
import os, runpy, signal, sys
from mmengine.fileio.backends import LocalBackend

put = LocalBackend.put


def dying_put(self, obj, filepath):
    """Half of iter_4's bytes reach the disk, then the process is killed."""
    if str(filepath).endswith('iter_4.pth'):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    return put(self, obj, filepath)


LocalBackend.put = dying_put
sys.argv = [{train!r}] + sys.argv[1:]
runpy.run_path({train!r}, run_name='__main__')
'''


def test_kill_while_saving_then_resume(tmp_path, cfg, train_tool):
    """max_keep_ckpts=1, a kill -9 while iter_4.pth is written: iter_2.pth
    and last_checkpoint survive, and --resume continues from iteration 2."""
    child = tmp_path / 'dying_train.py'
    child.write_text(CHILD.format(train=TRAIN))
    work = str(tmp_path / 'work')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop(UNSAFE_LOAD_ENV)
    proc = subprocess.run([sys.executable, str(child), cfg, '--work-dir', work],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert 'Iter(train) [4/4]' in proc.stdout + proc.stderr
    files = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
    assert 'iter_2.pth' in files and 'iter_4.pth' not in files
    assert len(files) == 2 and files[0].startswith('.tmp-')  # the half file
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(work, 'iter_2.pth')

    before = set(os.listdir(work))
    train_tool.main([cfg, '--work-dir', work, '--resume'])
    run_dir, = set(os.listdir(work)) - before - {'iter_4.pth'}
    log = open(osp.join(work, run_dir, run_dir + '.log')).read()
    assert 'Iter(train) [3/4]' in log and 'Iter(train) [1/4]' not in log
    assert 0.0 <= metric(log, 'loss') < 100.0
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == [
        'iter_4.pth']
    state = torch.load(osp.join(work, 'iter_4.pth'), weights_only=False)
    assert state['meta']['iter'] == 4
