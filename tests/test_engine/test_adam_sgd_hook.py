"""AdamToSGDHook (seed 002 §4.5): Adam before the switch iteration, SGD after."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import MultiStepLR, OptimWrapper


def _runner(model):
    import mmctx  # noqa: F401
    opt = torch.optim.Adam([{'params': [model.weight]},
                            {'params': [model.bias], 'lr': 5e-4}], lr=1e-3)
    wrapper = OptimWrapper(opt)
    sched = MultiStepLR(opt, milestones=[3], gamma=0.1, by_epoch=False)
    return SimpleNamespace(optim_wrapper=wrapper, param_schedulers=[sched],
                           iter=0, logger=logging.getLogger('t'))


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


def test_bad_args_and_resume_after_switch():
    from mmengine.registry import HOOKS
    with pytest.raises(ValueError, match='switch_iter'):
        HOOKS.build(dict(type='AdamToSGDHook', switch_iter=-1))
    hook = HOOKS.build(dict(type='AdamToSGDHook', switch_iter=1))
    runner = _runner(torch.nn.Linear(4, 2))
    runner.iter = 5
    with pytest.raises(ValueError, match='resuming'):
        hook.before_train(runner)
