"""Crash-safe checkpoint saving, resuming and checked loading, on a toy
mmengine Runner (mmctx.engine.hooks.checkpoint_hooks)."""
import itertools
import os
import os.path as osp

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.fileio.backends import LocalBackend
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import mmctx  # noqa: F401  (registers the hooks and the safe loaders)
from mmctx.engine.hooks import (CheckpointKeysHook, ResumeCheckHook,
                                compare_state_dict_keys)
from mmctx.utils.checkpoint import (UNSAFE_LOAD_ENV, allowed_globals,
                                    latest_checkpoint)

_names = itertools.count()


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - data_samples)**2).mean())
        return out


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(12, 2, generator=gen)
        self.y = self.x.sum(1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.y[i])


class RisingMetric(BaseMetric):
    """'acc' rises with every validation: each one is a new best."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def process(self, data_batch, data_samples):
        self.results.extend([0] * len(data_samples))

    def compute_metrics(self, results):
        self.calls += 1
        return dict(acc=float(self.calls))


def toy_runner(work_dir, hook='AtomicCheckpointHook', max_iters=4,
               max_keep_ckpts=1, custom_hooks=None, save_best=None,
               **kwargs):
    """A Runner that trains ToyModel with AdamW + MultiStepLR (a Counter in
    the scheduler state), checkpointing every 2 iterations; with
    ``save_best`` it validates every 2 iterations too."""
    if save_best:
        kwargs.update(
            val_dataloader=dict(
                dataset=ToyDataset(), batch_size=3, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='default_collate')),
            val_cfg=dict(), val_evaluator=Evaluator(RisingMetric()))
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        experiment_name=f'ckpt_toy_{os.getpid()}_{next(_names)}',
        train_dataloader=dict(
            dataset=ToyDataset(), batch_size=3, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        param_scheduler=dict(type='MultiStepLR', milestones=[1, 3],
                             by_epoch=False, gamma=0.5),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        default_hooks=dict(
            checkpoint=dict(type=hook, interval=2, by_epoch=False,
                            max_keep_ckpts=max_keep_ckpts,
                            save_best=save_best),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks, randomness=dict(seed=0),
        default_scope='mmengine', log_level='WARNING', **kwargs)


@pytest.fixture(autouse=True)
def safe_by_default(monkeypatch):
    monkeypatch.setenv(UNSAFE_LOAD_ENV, '0')


def _last_checkpoint(work):
    with open(osp.join(work, 'last_checkpoint')) as f:
        return f.read().strip()


def _allowed_names():
    names = set()
    for entry in allowed_globals():
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f'{entry.__module__}.{entry.__qualname__}')
    return names


# ---------------------------------------------------------------- resume round trip


def test_runner_checkpoints_need_only_allowed_globals_and_resume(tmp_path):
    """Every global a Runner checkpoint holds beyond torch's defaults is on
    the allow-list; resuming from iteration 2 ends where an uninterrupted
    run ends."""
    work = tmp_path / 'full'
    full = toy_runner(work, max_keep_ckpts=-1)
    full.train()
    ckpt2 = str(work / 'iter_2.pth')
    extra = torch.serialization.get_unsafe_globals_in_checkpoint(ckpt2)
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in extra
    assert any(name.startswith('numpy.') for name in extra)
    assert set(extra) <= _allowed_names(), set(extra) - _allowed_names()

    resumed = toy_runner(tmp_path / 'resumed', resume=True, load_from=ckpt2)
    resumed.train()
    assert resumed.iter == 4
    for (name, a), b in zip(full.model.state_dict().items(),
                            resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    opt_a = full.optim_wrapper.optimizer.state_dict()['state']
    opt_b = resumed.optim_wrapper.optimizer.state_dict()['state']
    for key in opt_a:
        torch.testing.assert_close(opt_a[key]['exp_avg'], opt_b[key]['exp_avg'])
        assert int(opt_a[key]['step']) == int(opt_b[key]['step']) == 4
    loss_a = full.message_hub.get_scalar('train/loss').data[0]
    loss_b = resumed.message_hub.get_scalar('train/loss').data[0]
    assert loss_a.tolist()[-2:] == pytest.approx(loss_b.tolist()[-2:])


# ---------------------------------------------------------------- crash while saving


class Crash(BaseException):
    """Stands in for the process dying (not an Exception: nothing catches it)."""


def crash_on(monkeypatch, name):
    """LocalBackend.put writes half of the bytes of the file whose name
    ends with ``name`` and 'dies' - what a kill -9 in the middle of the write
    leaves."""
    put = LocalBackend.put

    def half_put(self, obj, filepath):
        if osp.basename(str(filepath)).endswith(name):
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            raise Crash(str(filepath))
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', half_put)


@pytest.fixture
def crash_while_writing(monkeypatch):
    """A crash in the middle of writing iter_4.pth."""
    crash_on(monkeypatch, 'iter_4.pth')


def test_mmengine_hook_loses_everything_on_a_crash(tmp_path,
                                                   crash_while_writing):
    """The break (kept as a record): mmengine's CheckpointHook deletes
    iter_2.pth before iter_4.pth is complete."""
    work = str(tmp_path)
    with pytest.raises(Crash):
        toy_runner(work, hook='CheckpointHook').train()
    assert not osp.exists(osp.join(work, 'iter_2.pth'))
    assert _last_checkpoint(work).endswith('iter_2.pth')
    with pytest.raises(Exception):  # truncated
        torch.load(osp.join(work, 'iter_4.pth'), weights_only=False)


def test_atomic_hook_survives_a_crash_and_resumes(tmp_path,
                                                  crash_while_writing,
                                                  monkeypatch):
    work = str(tmp_path)
    with pytest.raises(Crash):
        toy_runner(work).train()
    # the last complete checkpoint is kept and named; no iter_4.pth at all
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == [
        '.tmp-%d-iter_4.pth' % os.getpid(), 'iter_2.pth']
    assert _last_checkpoint(work) == osp.join(work, 'iter_2.pth')
    assert latest_checkpoint(work) == osp.join(work, 'iter_2.pth')
    assert torch.load(osp.join(work, 'iter_2.pth'),
                      weights_only=False)['meta']['iter'] == 2

    monkeypatch.undo()  # the disk works again
    runner = toy_runner(work, resume=True)  # mmengine's auto-resume
    runner.train()
    assert runner.iter == 4
    names = sorted(n for n in os.listdir(work) if n.endswith('.pth'))
    assert names == ['iter_4.pth']  # half-written temp and iter_2 removed
    assert _last_checkpoint(work) == osp.join(work, 'iter_4.pth')
    state = torch.load(osp.join(work, 'iter_4.pth'), weights_only=False)
    assert state['meta']['iter'] == 4
    assert state['message_hub']['runtime_info']['keep_ckpt_ids'] == [4]


def test_atomic_hook_keeps_max_keep_ckpts(tmp_path):
    work = str(tmp_path)
    toy_runner(work, max_iters=8, max_keep_ckpts=2).train()
    assert sorted(n for n in os.listdir(work) if n.endswith('.pth')) == [
        'iter_6.pth', 'iter_8.pth']
    assert _last_checkpoint(work) == osp.join(work, 'iter_8.pth')


@pytest.mark.parametrize('hook', ['CheckpointHook', 'AtomicCheckpointHook'])
def test_crash_while_writing_the_best_checkpoint(tmp_path, monkeypatch, hook):
    """save_best: mmengine's hook leaves a truncated best_acc_iter_4.pth
    (the break, kept as a record); the atomic hook leaves none, and the
    regular iter_4.pth saved before it is complete."""
    work = str(tmp_path)
    crash_on(monkeypatch, 'best_acc_iter_4.pth')
    with pytest.raises(Crash):
        toy_runner(work, hook=hook, save_best='acc').train()
    best = osp.join(work, 'best_acc_iter_4.pth')
    if hook == 'CheckpointHook':
        with pytest.raises(Exception):
            torch.load(best, weights_only=False)
        return
    assert not osp.exists(best)
    assert any(n.startswith('.tmp-') and n.endswith('best_acc_iter_4.pth')
               for n in os.listdir(work))
    assert torch.load(osp.join(work, 'iter_4.pth'),
                      weights_only=False)['meta']['iter'] == 4
    # without the crash the best checkpoint is written whole, the previous
    # best removed
    monkeypatch.undo()
    work2 = str(tmp_path / 'again')
    toy_runner(work2, save_best='acc').train()
    assert sorted(n for n in os.listdir(work2) if n.startswith('best')) == [
        'best_acc_iter_4.pth']
    state = torch.load(osp.join(work2, 'best_acc_iter_4.pth'),
                       weights_only=False)
    assert state['meta']['iter'] == 4
    assert not any(n.startswith('.tmp-') for n in os.listdir(work2))


# ---------------------------------------------------------------- resume checks


def test_latest_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist.*mistyped'):
        latest_checkpoint(str(tmp_path / 'no_such_dir'))
    with pytest.raises(FileNotFoundError, match='no last_checkpoint'):
        latest_checkpoint(str(tmp_path))
    (tmp_path / 'last_checkpoint').write_text('elsewhere/iter_9.pth')
    with pytest.raises(FileNotFoundError, match="'elsewhere/iter_9.pth'"):
        latest_checkpoint(str(tmp_path))
    # a work dir moved since: the file is found in it by name
    (tmp_path / 'iter_9.pth').write_bytes(b'x')
    assert latest_checkpoint(str(tmp_path)) == str(tmp_path / 'iter_9.pth')


@pytest.mark.parametrize('strict', [True, False])
def test_resume_past_the_end(tmp_path, strict, caplog):
    work = str(tmp_path)
    toy_runner(work, max_iters=2).train()
    runner = toy_runner(work, max_iters=2, resume=True,
                        custom_hooks=[dict(type='ResumeCheckHook',
                                           strict=strict)])
    if strict:
        with pytest.raises(RuntimeError, match='nothing to train.*'
                           r'iteration 2 and train_cfg\.max_iters is 2'):
            runner.train()
    else:
        runner.train()
        assert runner.iter == 2


def test_resume_check_lets_unfinished_runs_train(tmp_path):
    work = str(tmp_path)
    toy_runner(work, max_iters=2).train()
    runner = toy_runner(work, max_iters=4, resume=True,
                        custom_hooks=[ResumeCheckHook(strict=True)])
    runner.train()
    assert runner.iter == 4


# ---------------------------------------------------------------- checked loading


def test_compare_state_dict_keys():
    model = dict(a=torch.zeros(2), b=torch.zeros(3), c=torch.zeros(1),
                 **{'bn.num_batches_tracked': torch.tensor(0)})
    ckpt = dict(a=torch.zeros(2), b=torch.zeros(4), d=torch.zeros(1))
    missing, unexpected, mismatched = compare_state_dict_keys(model, ckpt)
    assert missing == ['c']  # num_batches_tracked is not reported
    assert unexpected == ['d']
    assert mismatched == [('b', (4, ), (3, ))]


def test_checkpoint_keys_hook(tmp_path, caplog):
    other = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict={
        'module.linear.weight': torch.zeros(1, 2),  # 'module.' is revised
        'head.weight': torch.zeros(3), 'head.bias': torch.zeros(3),
        'neck.weight': torch.zeros(3), 'neck.bias': torch.zeros(3)}), other)
    runner = toy_runner(tmp_path / 'a', custom_hooks=[
        CheckpointKeysHook(strict=True, source=other)])
    with pytest.raises(RuntimeError) as info:
        runner.load_checkpoint(other)
    message = str(info.value)
    assert other in message
    assert "1 of the model's 2 keys are missing" in message
    assert 'linear.bias' in message
    assert '4 checkpoint keys are not in the model' in message
    assert 'head.bias, head.weight, neck.bias, ...' in message
    assert '--no-strict' in message
    # the weights were not touched
    assert not torch.equal(runner.model.linear.weight, torch.zeros(1, 2))

    lenient = toy_runner(tmp_path / 'b', custom_hooks=[
        CheckpointKeysHook(strict=False)])
    lenient.load_checkpoint(other)
    assert torch.equal(lenient.model.linear.weight.data, torch.zeros(1, 2))

    # a checkpoint of this model passes
    own = str(tmp_path / 'own.pth')
    torch.save(dict(state_dict=ToyModel().state_dict()), own)
    toy_runner(tmp_path / 'c', custom_hooks=[CheckpointKeysHook()]
               ).load_checkpoint(own)


def test_checkpoint_keys_hook_names_shape_mismatch(tmp_path):
    bad = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict={'linear.weight': torch.zeros(1, 5),
                                'linear.bias': torch.zeros(1)}), bad)
    runner = toy_runner(tmp_path / 'a', custom_hooks=[CheckpointKeysHook()])
    with pytest.raises(RuntimeError, match=r'1 keys have another shape '
                       r'\(linear\.weight: \(1, 5\) in the checkpoint, '
                       r'\(1, 2\) in the model\)'):
        runner.load_checkpoint(bad)
