"""Hooks that make saving, resuming and loading checkpoints fail loudly or not at all.

``AtomicCheckpointHook``
    mmengine's ``CheckpointHook`` deletes the oldest checkpoint
    (``max_keep_ckpts``) *before* it writes the new one, writes the new one
    in place, and only then updates ``last_checkpoint``: a crash while
    ``iter_20.pth`` is written (``max_keep_ckpts=1``) leaves ``iter_10.pth``
    deleted, ``iter_20.pth`` truncated and ``last_checkpoint`` naming the
    deleted file - nothing to resume from. This hook writes each checkpoint
    to a temporary file in the same directory, flushes it to disk
    (``fsync``), renames it into place (``os.replace``, atomic on POSIX),
    then rewrites ``last_checkpoint`` the same way, and only then deletes
    the checkpoints beyond ``max_keep_ckpts``. At every moment
    ``last_checkpoint`` names a complete file. ``best_*.pth`` files
    (``save_best``) go through a temporary file too. ``tools/train.py`` uses
    it in place of ``CheckpointHook``.

``ResumeCheckHook``
    Resuming from a checkpoint at or past ``max_iters`` / ``max_epochs``
    makes mmengine's loops return at once: the run "succeeds" having done
    nothing. This hook says so before training starts: an error
    (``strict=True``, an explicit ``tools/train.py --resume``) or a warning
    (``--resume auto``).

``CheckpointKeysHook``
    mmengine loads ``load_from`` with ``strict=False``: a checkpoint of
    another model loads nothing, logs a warning, and ``tools/test.py`` then
    evaluates random weights. This hook compares the keys (and shapes) of
    the loaded checkpoint with the model's before they are copied, and
    raises an error naming a few missing / unexpected keys and their counts
    (``strict=True``, the default of ``tools/test.py``) or logs them.
"""
import os
import os.path as osp
import re
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

__all__ = ['AtomicCheckpointHook', 'ResumeCheckHook', 'CheckpointKeysHook',
           'atomic_write_text', 'compare_state_dict_keys']

_TMP_PREFIX = '.tmp-'


def _fsync_path(path: str) -> None:
    """Flush a file's (or a directory's) data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_durably(tmp: str, path: str) -> None:
    """``os.replace(tmp, path)`` after ``tmp`` reached the disk, then make
    the rename itself durable (fsync of the directory)."""
    _fsync_path(tmp)
    os.replace(tmp, path)
    try:
        _fsync_path(osp.dirname(osp.abspath(path)))
    except OSError:  # pragma: no cover (directories that cannot be opened)
        pass


def _tmp_name(filename: str) -> str:
    return f'{_TMP_PREFIX}{os.getpid()}-{filename}'


def atomic_write_text(path: str, text: str) -> None:
    """Replace the file ``path`` by ``text`` so that a crash leaves either
    the old or the new content, never a part."""
    tmp = osp.join(osp.dirname(osp.abspath(path)), _tmp_name(osp.basename(path)))
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _replace_durably(tmp, path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with crash-safe files.

    Same arguments and checkpoints as ``CheckpointHook``; only the order and
    manner of writing differ: temporary file, ``fsync``, ``os.replace``, then
    ``last_checkpoint`` (written the same way), then deletion of checkpoints
    beyond ``max_keep_ckpts``. Temporary files a killed run left behind are
    removed when training starts. Checkpoints saved to a non-local backend
    (``backend_args`` / ``file_client_args``) are written by
    ``CheckpointHook`` unchanged.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._atomic() and is_main_process() and osp.isdir(self.out_dir):
            for name in os.listdir(self.out_dir):
                if name.startswith(_TMP_PREFIX):
                    os.remove(osp.join(self.out_dir, name))
                    runner.logger.info(
                        f'removed {name}, a checkpoint left half-written by '
                        'an interrupted run')

    def _atomic(self) -> bool:
        return (self.file_client_args is None
                and isinstance(getattr(self, 'file_backend', None),
                               LocalBackend))

    @staticmethod
    def _save_atomically(runner, out_dir: str, filename: str, *args,
                         **kwargs) -> None:
        """The runner's ``save_checkpoint`` into a temporary file, renamed
        to ``filename`` once complete and on disk."""
        tmp_name = _tmp_name(filename)
        # the class's method: _save_best_checkpoint routes the instance's
        # through this function
        type(runner).save_checkpoint(runner, out_dir, tmp_name, *args,
                                     **kwargs)
        if is_main_process():  # Runner.save_checkpoint is master-only
            _replace_durably(osp.join(out_dir, tmp_name),
                             osp.join(out_dir, filename))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """``CheckpointHook``'s, with the ``best_*.pth`` files written
        through a temporary file too (a crash leaves no truncated best
        checkpoint; the previous best is still deleted first, as mmengine
        does)."""
        if not self._atomic():
            return super()._save_best_checkpoint(runner, metrics)

        def save_checkpoint(out_dir, filename, *args, **kwargs):
            self._save_atomically(runner, out_dir, filename, *args, **kwargs)

        runner.save_checkpoint = save_checkpoint
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            del runner.save_checkpoint

    def _remove_checkpoint(self, step) -> None:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed saves directories
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not self._atomic():
            return super()._save_checkpoint_with_step(runner, step, meta)
        # the bookkeeping of CheckpointHook (the ids are saved in the
        # checkpoint's message_hub), but the outdated file is only deleted
        # once its successor is complete and named by last_checkpoint
        outdated = None
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)

        self._save_atomically(
            runner, self.out_dir, ckpt_filename,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)

        if not is_main_process():
            return
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'),
                          self.last_ckpt)
        if outdated is not None and outdated != step:
            self._remove_checkpoint(outdated)


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """Refuse (or report) a resumed run that has nothing left to train.

    Runs at ``before_train``, after mmengine has resumed the loop's
    iteration / epoch from the checkpoint.

    Args:
        strict (bool): raise a ``RuntimeError`` (True) or log a warning
            (False) when the resumed iteration (iteration-based loop) or
            epoch (epoch-based loop) already reaches the end of training.
    """

    priority = 'VERY_HIGH'

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def before_train(self, runner) -> None:
        from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            done, end, unit, key = loop.iter, loop.max_iters, 'iteration', \
                'train_cfg.max_iters'
        elif isinstance(loop, EpochBasedTrainLoop):
            done, end, unit, key = loop.epoch, loop.max_epochs, 'epoch', \
                'train_cfg.max_epochs'
        else:  # a custom loop: nothing known about its end
            return
        if done < end:
            return
        message = (
            f'nothing to train: the resumed checkpoint ends at {unit} {done} '
            f'and {key} is {end}. To train longer raise it (e.g. '
            f'--cfg-options {key}={max(2 * end, done + 1)}); to start over '
            'use another --work-dir or no --resume.')
        if self.strict:
            raise RuntimeError(message)
        print_log(message, logger='current', level=30)


def compare_state_dict_keys(model_state: dict, ckpt_state: dict,
                            ignore=(r'(^|\.)num_batches_tracked$', )):
    """Keys missing from / unexpected in a checkpoint, and shape mismatches.

    Args:
        model_state (dict): the model's ``state_dict()``.
        ckpt_state (dict): the checkpoint's state dict (keys already revised,
            e.g. ``module.`` stripped).
        ignore (tuple[str]): regexes of model keys whose absence is not
            reported; by default BatchNorm's ``num_batches_tracked`` counter,
            which torch fills in for checkpoints written without it and which
            does not change what the model computes.

    Returns:
        tuple[list, list, list]: missing keys, unexpected keys and
        ``(key, checkpoint shape, model shape)`` for mismatched shapes, each
        sorted.
    """
    missing = sorted(k for k in model_state if k not in ckpt_state
                     and not any(re.search(p, k) for p in ignore))
    unexpected = sorted(k for k in ckpt_state if k not in model_state)
    mismatched = []
    for key in sorted(set(model_state) & set(ckpt_state)):
        mine, theirs = model_state[key], ckpt_state[key]
        if hasattr(mine, 'shape') and hasattr(theirs, 'shape') \
                and tuple(mine.shape) != tuple(theirs.shape):
            mismatched.append((key, tuple(theirs.shape), tuple(mine.shape)))
    return missing, unexpected, mismatched


def _few(keys, n=3):
    shown = ', '.join(str(k) for k in keys[:n])
    return shown + (', ...' if len(keys) > n else '')


@HOOKS.register_module()
class CheckpointKeysHook(Hook):
    """Check that a loaded checkpoint fits the model, before it is copied.

    Runs at ``after_load_checkpoint`` (``load_from`` and ``resume``), after
    the other hooks (lowest priority), with mmengine's own key revision
    (a leading ``module.`` stripped).

    Args:
        strict (bool): raise a ``RuntimeError`` on missing or unexpected
            keys or mismatched shapes (True), or log them (False).
        source (str, optional): what to call the checkpoint in messages.
    """

    priority = 'LOWEST'

    def __init__(self, strict: bool = True, source: Optional[str] = None):
        self.strict = strict
        self.source = source

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from mmengine.model import BaseTTAModel, is_model_wrapper
        model = runner.model
        if is_model_wrapper(model) or isinstance(model, BaseTTAModel):
            model = model.module
        state = checkpoint.get('state_dict', checkpoint)
        state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
        missing, unexpected, mismatched = compare_state_dict_keys(
            model.state_dict(), state)
        if not (missing or unexpected or mismatched):
            return
        total = len(model.state_dict())
        parts = []
        if missing:
            parts.append(f'{len(missing)} of the model\'s {total} keys are '
                         f'missing from the checkpoint ({_few(missing)})')
        if unexpected:
            parts.append(f'{len(unexpected)} checkpoint keys are not in the '
                         f'model ({_few(unexpected)})')
        if mismatched:
            shown = ', '.join(f'{k}: {a} in the checkpoint, {b} in the model'
                              for k, a, b in mismatched[:3])
            parts.append(f'{len(mismatched)} keys have another shape '
                         f'({shown}{", ..." if len(mismatched) > 3 else ""})')
        source = self.source or 'the checkpoint'
        message = (f'{source} does not match the model: ' + '; '.join(parts))
        if self.strict:
            raise RuntimeError(
                message + '. Is it a checkpoint of this config? To load the '
                'matching weights only, pass --no-strict.')
        print_log(message + ' (loading the matching weights only)',
                  logger='current', level=30)
