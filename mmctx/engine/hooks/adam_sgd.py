"""Adam-then-SGD optimisation of seed 002 §4.5 (Fig. 5, Table 6).

"We trained the model with Adam optimizer first and switched to the common
SGD optimizer" (Keskar & Socher, 2017): Adam trains the randomly initialised
self-attention weights without divergence, SGD then fine-tunes. The config's
``optim_wrapper`` holds the Adam optimizer; at ``switch_iter`` this hook
replaces it, in the same optimizer wrapper, by the SGD optimizer built from
``sgd_cfg`` over the same parameter groups, and points every parameter
scheduler at the new optimizer (their factors apply to the SGD lr from then).
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS, OPTIMIZERS

__all__ = ['AdamToSGDHook']

_ADAM_ONLY = ('betas', 'eps', 'amsgrad', 'maximize', 'foreach', 'capturable',
              'differentiable', 'fused', 'decoupled_weight_decay')


@HOOKS.register_module()
class AdamToSGDHook(Hook):
    """Switch the optimizer from Adam to SGD at a configured iteration.

    Args:
        switch_iter: the first iteration (0-based, global) run with SGD.
        sgd_cfg: the SGD optimizer (``type``, ``lr``, ``momentum``,
            ``weight_decay``); each parameter group keeps its ratio to the
            Adam base lr (e.g. ``paramwise_cfg`` multipliers).
    """
    priority = 'VERY_HIGH'

    def __init__(self, switch_iter: int,
                 sgd_cfg: Optional[dict] = None):
        if not isinstance(switch_iter, int) or switch_iter < 0:
            raise ValueError(f'switch_iter must be an int >= 0, got '
                             f'{switch_iter!r}')
        self.switch_iter = switch_iter
        self.sgd_cfg = dict(type='SGD', lr=0.01, momentum=0.9,
                            weight_decay=0.0001) if sgd_cfg is None else dict(sgd_cfg)
        if 'lr' not in self.sgd_cfg:
            raise ValueError('sgd_cfg needs an lr')
        self.switched = False

    def before_train(self, runner) -> None:
        if runner.iter > self.switch_iter:
            raise ValueError(
                f'AdamToSGDHook: resuming at iteration {runner.iter}, after '
                f'the switch at {self.switch_iter}, is not supported (the '
                f'checkpoint holds SGD state, the config builds Adam)')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.switched or runner.iter != self.switch_iter:
            return
        self.switch(runner)

    def switch(self, runner) -> None:
        wrapper = runner.optim_wrapper
        old = wrapper.optimizer
        base_lr = old.defaults['lr']
        cfg = dict(self.sgd_cfg)
        lr = cfg['lr']
        groups = []
        for group in old.param_groups:
            scale = group.get('initial_lr', group['lr']) / base_lr
            new = {k: v for k, v in group.items()
                   if k not in _ADAM_ONLY and k not in ('lr', 'initial_lr')}
            new.pop('weight_decay', None)
            new['lr'] = new['initial_lr'] = lr * scale
            groups.append(new)
        new_opt = OPTIMIZERS.build(dict(cfg, params=groups))
        for group in new_opt.param_groups:
            group.setdefault('initial_lr', group['lr'])
        wrapper.optimizer = new_opt
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for v in schedulers.values() for s in v]
        for s in schedulers:
            s.optimizer = new_opt
            s.base_values = [g['initial_lr'] for g in new_opt.param_groups]
        self.switched = True
        runner.logger.info(f'AdamToSGDHook: switched to {cfg["type"]} '
                           f'(lr {lr}) at iteration {runner.iter}')
