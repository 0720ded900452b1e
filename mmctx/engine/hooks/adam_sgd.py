"""Adam-then-SGD optimisation of Lee, Kim and Jung, *Improving Object
Detection Quality by Incorporating Global Contexts via Self-Attention*
(§4.5, Fig. 5, Table 6).

"We trained the model with Adam optimizer first and switched to the common
SGD optimizer" (Keskar & Socher, 2017); "Finally, we finetuned the models by
SGD optimizer to boost the performance." Adam trains the randomly
initialised self-attention weights without divergence, SGD then fine-tunes.

The config's ``optim_wrapper`` holds the Adam optimizer. At the switch (an
iteration or an epoch) this hook replaces it, in the same optimizer wrapper,
by the SGD optimizer built from ``sgd_cfg`` over the same parameter groups
and points every parameter scheduler at it. The schedules compose:

* each group keeps its ratio to the Adam base lr (``paramwise_cfg``);
* the factor the schedulers had applied at the switch carries over
  (``lr_sgd = sgd_cfg.lr * ratio * lr_adam / initial_lr_adam``), so a decay
  or warm-up before the switch is not lost, and every later step (a
  ``MultiStepLR`` milestone, ``PolyLR``) acts on the SGD lr;
* ``initial_lr`` of the SGD groups is ``sgd_cfg.lr * ratio``, the base the
  schedulers scale.

Checkpoints record whether the switch happened (``meta['adam_to_sgd']``), so
a run resumed after the switch rebuilds SGD before the optimizer state is
loaded and continues bit for bit.
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS, OPTIMIZERS

__all__ = ['AdamToSGDHook']

_ADAM_ONLY = ('betas', 'eps', 'amsgrad', 'maximize', 'foreach', 'capturable',
              'differentiable', 'fused', 'decoupled_weight_decay')
#: key of the checkpoint ``meta`` recording the switch
META_KEY = 'adam_to_sgd'


def _check_point(name, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        raise ValueError(f'{name} must be an int >= 0, got {value!r}')


@HOOKS.register_module()
class AdamToSGDHook(Hook):
    """Switch the optimizer from Adam to SGD at a configured iteration or epoch.

    Args:
        switch_iter: the first iteration (0-based, global) run with SGD.
        switch_epoch: the first epoch (0-based) run with SGD, for epoch-based
            loops: ``switch_epoch=8`` runs epochs 1-8 with Adam and the rest
            with SGD. Give exactly one of the two.
        sgd_cfg: the SGD optimizer (``type``, ``lr``, ``momentum``,
            ``weight_decay``); each parameter group keeps its ratio to the
            Adam base lr (e.g. ``paramwise_cfg`` multipliers).
    """
    priority = 'VERY_HIGH'

    def __init__(self,
                 switch_iter: Optional[int] = None,
                 switch_epoch: Optional[int] = None,
                 sgd_cfg: Optional[dict] = None):
        _check_point('switch_iter', switch_iter)
        _check_point('switch_epoch', switch_epoch)
        if (switch_iter is None) == (switch_epoch is None):
            raise ValueError('give exactly one of switch_iter and switch_epoch, '
                             f'got switch_iter={switch_iter!r}, '
                             f'switch_epoch={switch_epoch!r}')
        self.switch_iter = switch_iter
        self.switch_epoch = switch_epoch
        self.sgd_cfg = dict(type='SGD', lr=0.01, momentum=0.9,
                            weight_decay=0.0001) if sgd_cfg is None else dict(sgd_cfg)
        if 'lr' not in self.sgd_cfg:
            raise ValueError(f'sgd_cfg needs an lr, got {self.sgd_cfg!r}')
        self.switched = False

    @property
    def _where(self) -> str:
        if self.switch_iter is not None:
            return f'iteration {self.switch_iter}'
        return f'epoch {self.switch_epoch}'

    def _past_switch(self, runner) -> bool:
        if self.switch_iter is not None:
            return runner.iter > self.switch_iter
        return runner.epoch > self.switch_epoch

    def before_train(self, runner) -> None:
        if not self.switched and self._past_switch(runner):
            raise ValueError(
                f'AdamToSGDHook: resuming at iteration {runner.iter} (epoch '
                f'{runner.epoch}), after the switch at {self._where}, from a '
                f'checkpoint that does not record the switch (meta '
                f'{META_KEY!r}); it holds SGD state the config cannot rebuild')

    def before_train_epoch(self, runner) -> None:
        if (not self.switched and self.switch_epoch is not None
                and runner.epoch == self.switch_epoch):
            self.switch(runner)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if (not self.switched and self.switch_iter is not None
                and runner.iter == self.switch_iter):
            self.switch(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[META_KEY] = self.switched

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # mmengine calls this before it loads the optimizer state: a resumed
        # run that had switched needs the SGD optimizer in place to take it.
        # (load_from, which loads weights only, keeps Adam.)
        if (getattr(runner, '_resume', False) and not self.switched
                and checkpoint.get('meta', {}).get(META_KEY, False)):
            self.switch(runner)

    def switch(self, runner) -> None:
        """Replace Adam by SGD in ``runner.optim_wrapper`` (see the module doc)."""
        wrapper = runner.optim_wrapper
        old = wrapper.optimizer
        base_lr = old.defaults['lr']
        cfg = dict(self.sgd_cfg)
        lr = cfg['lr']
        groups = []
        for group in old.param_groups:
            initial = group.get('initial_lr', group['lr'])
            new = {k: v for k, v in group.items()
                   if k not in _ADAM_ONLY and k not in ('lr', 'initial_lr')}
            new.pop('weight_decay', None)
            new['initial_lr'] = lr * initial / base_lr
            new['lr'] = new['initial_lr'] * (group['lr'] / initial if initial else 1.0)
            groups.append(new)
        new_opt = OPTIMIZERS.build(dict(cfg, params=groups))
        wrapper.optimizer = new_opt
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for v in schedulers.values() for s in v]
        for s in schedulers:
            s.optimizer = new_opt
            s.base_values = [g['initial_lr'] for g in new_opt.param_groups]
            if hasattr(s, '_last_value'):
                s._last_value = [g['lr'] for g in new_opt.param_groups]
        self.switched = True
        runner.logger.info(
            f'AdamToSGDHook: switched to {cfg["type"]} at iteration '
            f'{runner.iter} (epoch {runner.epoch}): lr '
            f'{[round(g["lr"], 8) for g in new_opt.param_groups]}')
