"""AdamToSGDHook (Lee, Kim and Jung, §4.5): Adam before the switch, SGD after;
the parameter schedulers carry over; a run resumed after the switch goes on
exactly as the uninterrupted one."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import LinearLR, MultiStepLR, OptimWrapper

import mmctx  # noqa: F401  (registers AdamToSGDHook)


def _runner(model, schedulers=lambda opt: [MultiStepLR(opt, milestones=[3], gamma=0.1,
                                                       by_epoch=False)]):
    opt = torch.optim.Adam([{'params': [model.weight]},
                            {'params': [model.bias], 'lr': 5e-4}], lr=1e-3)
    wrapper = OptimWrapper(opt)
    return SimpleNamespace(optim_wrapper=wrapper, param_schedulers=schedulers(opt),
                           iter=0, epoch=0, logger=logging.getLogger('t'))


def test_switches_at_configured_iteration():
    from mmengine.registry import HOOKS
    model = torch.nn.Linear(4, 2)
    runner = _runner(model)
    hook = HOOKS.build(dict(type='AdamToSGDHook', switch_iter=2,
                            sgd_cfg=dict(type='SGD', lr=0.1, momentum=0.9)))
    hook.before_train(runner)
    for it in range(5):
        runner.iter = it
        hook.before_train_iter(runner, it)
        opt = runner.optim_wrapper.optimizer
        assert isinstance(opt, torch.optim.Adam if it < 2 else torch.optim.SGD)
        loss = model(torch.randn(3, 4)).pow(2).sum()
        runner.optim_wrapper.update_params(loss)
        for s in runner.param_schedulers:
            s.step()
    opt = runner.optim_wrapper.optimizer
    # group ratios kept (0.5 for the bias group), MultiStep x0.1 at step 3
    assert opt.param_groups[0]['lr'] == pytest.approx(0.01)
    assert opt.param_groups[1]['lr'] == pytest.approx(0.005)
    assert opt.param_groups[0]['momentum'] == 0.9
    assert 'betas' not in opt.param_groups[0]
    assert runner.param_schedulers[0].optimizer is opt
    assert opt.state[model.weight]['momentum_buffer'] is not None


def _lr_of_each_iteration(hook, runner, model, iters):
    """Run ``iters`` iterations as the runner calls the hook; the lr each one used."""
    lrs = []
    for it in range(iters):
        runner.iter = it
        hook.before_train_iter(runner, it)
        lrs.append(runner.optim_wrapper.optimizer.param_groups[0]['lr'])
        runner.optim_wrapper.update_params(model(torch.randn(3, 4)).pow(2).sum())
        for s in runner.param_schedulers:
            s.step()
    return lrs


def test_a_decay_before_the_switch_carries_over():
    """Milestone at step 1, switch at step 3: SGD starts at 0.1 x its lr, not at its lr."""
    from mmengine.registry import HOOKS
    model = torch.nn.Linear(4, 2)
    runner = _runner(model, lambda opt: [MultiStepLR(opt, milestones=[1, 4], gamma=0.1,
                                                     by_epoch=False)])
    hook = HOOKS.build(dict(type='AdamToSGDHook', switch_iter=3,
                            sgd_cfg=dict(type='SGD', lr=0.1, momentum=0.9)))
    lrs = _lr_of_each_iteration(hook, runner, model, 6)
    assert lrs == pytest.approx([1e-3, 1e-4, 1e-4, 0.01, 0.001, 0.001])
    assert runner.optim_wrapper.optimizer.param_groups[0]['initial_lr'] == pytest.approx(0.1)


def test_a_switch_during_warm_up_keeps_warming_up():
    from mmengine.registry import HOOKS
    model = torch.nn.Linear(4, 2)
    runner = _runner(model, lambda opt: [LinearLR(opt, start_factor=0.25, end=4,
                                                  by_epoch=False)])
    hook = HOOKS.build(dict(type='AdamToSGDHook', switch_iter=2,
                            sgd_cfg=dict(type='SGD', lr=0.1)))
    lrs = _lr_of_each_iteration(hook, runner, model, 6)
    # linear factor 0.25, 0.5, 0.75, 1, 1, 1 of 1e-3 (Adam), then of 0.1 (SGD)
    assert lrs == pytest.approx([2.5e-4, 5e-4, 0.075, 0.1, 0.1, 0.1])


def test_switch_epoch():
    from mmengine.registry import HOOKS
    model = torch.nn.Linear(4, 2)
    runner = _runner(model, lambda opt: [])
    hook = HOOKS.build(dict(type='AdamToSGDHook', switch_epoch=1))
    for epoch in range(3):
        runner.epoch = epoch
        hook.before_train_epoch(runner)
        hook.before_train_iter(runner, 0)
        assert isinstance(runner.optim_wrapper.optimizer,
                          torch.optim.Adam if epoch < 1 else torch.optim.SGD)


def test_bad_args_and_resume_after_switch_without_record():
    from mmengine.registry import HOOKS
    with pytest.raises(ValueError, match='switch_iter'):
        HOOKS.build(dict(type='AdamToSGDHook', switch_iter=-1))
    with pytest.raises(ValueError, match='switch_epoch'):
        HOOKS.build(dict(type='AdamToSGDHook', switch_epoch=1.5))
    with pytest.raises(ValueError, match='exactly one'):
        HOOKS.build(dict(type='AdamToSGDHook'))
    with pytest.raises(ValueError, match='exactly one'):
        HOOKS.build(dict(type='AdamToSGDHook', switch_iter=1, switch_epoch=1))
    with pytest.raises(ValueError, match='lr'):
        HOOKS.build(dict(type='AdamToSGDHook', switch_iter=1, sgd_cfg=dict(type='SGD')))
    hook = HOOKS.build(dict(type='AdamToSGDHook', switch_iter=1))
    runner = _runner(torch.nn.Linear(4, 2))
    runner.iter = 5
    with pytest.raises(ValueError, match='resuming'):
        hook.before_train(runner)


class _Data(torch.utils.data.Dataset):
    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(8, 2, generator=gen)
        self.y = self.x @ torch.tensor([[1.5], [-2.0]]) + 0.5

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], data_samples=self.y[i])


def _toy_runner(work_dir, name, max_epochs, resume_from=None):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.linear(inputs)
            if mode == 'loss':
                return dict(loss=(out - data_samples).pow(2).mean())
            return out

    return Runner(
        model=Toy(), work_dir=str(work_dir), experiment_name=name,
        train_dataloader=dict(dataset=_Data(), batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='Adam', lr=0.01)),
        param_scheduler=dict(type='MultiStepLR', milestones=[3], gamma=0.5, by_epoch=True),
        custom_hooks=[dict(type='AdamToSGDHook', switch_epoch=2,
                           sgd_cfg=dict(type='SGD', lr=0.05, momentum=0.9))],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=100)),
        load_from=resume_from, resume=resume_from is not None,
        randomness=dict(seed=0), default_scope='mmengine')


def test_resume_after_the_switch_continues_exactly(tmp_path):
    """Train 5 epochs (SGD from epoch 3); resume from epoch 3's checkpoint in
    another work dir: same weights, optimizer type and momentum at the end."""
    full = _toy_runner(tmp_path / 'full', 'adam_sgd_full', 5)
    full.train()
    resumed = _toy_runner(tmp_path / 'resumed', 'adam_sgd_resumed', 5,
                          resume_from=str(tmp_path / 'full' / 'epoch_3.pth'))
    resumed.train()
    opt = resumed.optim_wrapper.optimizer
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]['lr'] == pytest.approx(0.025)  # x0.5 after epoch 3
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    state_a = full.optim_wrapper.optimizer.state_dict()['state']
    state_b = opt.state_dict()['state']
    assert all(torch.equal(state_a[k]['momentum_buffer'], state_b[k]['momentum_buffer'])
               for k in state_a)
