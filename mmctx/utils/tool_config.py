"""Config loading shared by ``tools/train.py`` and ``tools/test.py``.

Both tools read a config, merge ``--cfg-options``, pick the task library
(mmdet or mmseg) from the config's ``default_scope`` (:mod:`.scope`), default the work
directory to ``./work_dirs/<config name>`` and build a runner the same way;
this module holds those steps once.

``--cfg-options`` overrides are checked before they are merged: mmengine adds
a key that is not in the config without a word, so a misspelt path
(``optim_wraper.optimizer.lr=0.5``) would be ignored. A path whose top-level
key, or any key on the way to the last one, is missing is refused with the
closest existing keys; the last key of a longer path may be new (it becomes a
new argument), and ``--allow-new-cfg-keys`` accepts new keys everywhere.
"""
import argparse
import difflib
import inspect
import os
import os.path as osp
from typing import Iterable, List, Tuple

from mmengine.config import Config, DictAction

from .scope import SCOPES, task_scope  # noqa: F401  (re-exported)


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """The options every tool shares: work dir, overrides and launcher."""
    parser.add_argument('--work-dir', help='directory for logs, checkpoints and metrics')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. '
        'train_cfg.max_iters=100 model.backbone.depth=18); a path whose '
        'top-level or intermediate key is not in the config is an error')
    parser.add_argument(
        '--allow-new-cfg-keys', action='store_true',
        help='let --cfg-options add keys that are not in the config '
        '(otherwise a misspelt key is an error naming the closest one)')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    # torch.distributed.launch passes --local-rank, torchrun sets LOCAL_RANK
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def runner_config_keys() -> Tuple[str, ...]:
    """Top-level keys that a config may lack but an override may set.

    The arguments of mmengine's ``Runner`` (``randomness``, ``custom_hooks``,
    ...), the keys its runner reads with ``cfg.get`` (``compile``,
    ``find_unused_parameters``, ...) and those mmctx's tools read
    (``data_check``).
    """
    from mmengine.runner import Runner

    from .dataset_check import CONFIG_KEY
    params = [n for n in inspect.signature(Runner.__init__).parameters
              if n not in ('self', 'cfg')]
    return tuple(params) + RUNNER_CFG_KEYS + (CONFIG_KEY, )


# Keys mmengine's Runner reads from its config besides its arguments.
RUNNER_CFG_KEYS = ('runner_type', 'custom_imports', 'model_wrapper_cfg',
                   'sync_bn', 'find_unused_parameters',
                   'activation_checkpointing', 'efficient_conv_bn_eval',
                   'compile')


def _closest(word: str, choices: Iterable[str]) -> str:
    unique = list(dict.fromkeys(str(c) for c in choices))
    close = difflib.get_close_matches(word, unique, n=3, cutoff=0.6)
    if not close:
        return ''
    return ' (did you mean ' + ' or '.join(repr(c) for c in close) + '?)'


def check_override_keys(cfg: Config, options: dict) -> None:
    """Refuse ``--cfg-options`` paths that would silently add a key.

    For each ``a.b.c=value`` of ``options`` (as parsed by ``DictAction``),
    ``a`` must be a key of the config or a key the runner reads
    (:func:`runner_config_keys`), and every key before the last (``b``) must
    exist in the dict above it; a numeric key into a list must be an index
    of it. Only the last key of a path of two or more keys may be new.

    Raises:
        ValueError: naming every offending option, the missing key, the path
            that lacks it and the closest existing keys.
    """
    known_top = runner_config_keys()
    problems: List[str] = []
    for full_key in options:
        parts = full_key.split('.')
        node = cfg
        keys = list(cfg.keys())
        for depth, part in enumerate(parts):
            where = '.'.join(parts[:depth]) or 'the config'
            if isinstance(node, list):
                if part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                    continue
                problems.append(
                    f'{full_key}: {where} is a list of {len(node)} items, '
                    f'{part!r} is not an index of it')
                break
            if depth > 0 and not isinstance(node, dict):
                break  # mmengine's merge reports the type clash itself
            if depth > 0:
                keys = list(node.keys())
            if part in keys:
                node = node[part]
                continue
            if depth == 0 and part in known_top:
                break
            if depth > 0 and depth == len(parts) - 1:
                break  # a new last key: a new argument
            choices = keys + list(known_top) if depth == 0 else keys
            problems.append(f'{full_key}: {where} has no key {part!r}'
                            f'{_closest(part, choices)}')
            break
    if problems:
        raise ValueError(
            '--cfg-options would add keys that are not in the config '
            '(mmengine would silently keep them unused):\n  '
            + '\n  '.join(problems)
            + '\nFix the spelling, or pass --allow-new-cfg-keys to add new '
            'keys on purpose.')


def load_tool_config(args: argparse.Namespace) -> Tuple[Config, str]:
    """Read ``args.config`` with the shared options applied.

    Returns the config and its task scope. ``LOCAL_RANK`` is set from
    ``--local-rank`` when the launcher did not set it. ``--cfg-options`` are
    checked by :func:`check_override_keys` unless ``--allow-new-cfg-keys``.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        if not getattr(args, 'allow_new_cfg_keys', False):
            check_override_keys(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    scope = task_scope(cfg)
    # work_dir: command line > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg, scope


def close_distributed() -> None:
    """End the process group, if any, together on all ranks before exiting.

    mmengine leaves the group to the interpreter's exit; with the gloo
    backend (``tools/dist_*.sh`` on CPU) a rank then sometimes aborts after
    finishing its work ("terminate called without an active exception",
    SIGABRT), which fails the launch (measured: 2 of 20 two-process
    ``dist_test.sh`` runs). Destroying the group while the other rank may
    still be using it made that worse (4 of 10); a barrier first, then the
    destroy, gave 0 of 30.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def build_runner(cfg: Config):
    """The config's runner (``runner_type`` if given, else mmengine's Runner)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
