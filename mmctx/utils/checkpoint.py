"""Safe checkpoint loading for every scheme mmengine's ``CheckpointLoader`` knows.

A ``.pth`` file is a pickle, and unpickling can call any importable function:
a checkpoint can run code on the machine that loads it. torch's
``weights_only=True`` unpickler only rebuilds tensors and plain containers;
this module loads every checkpoint that way, with exactly the extra types
mmengine writes into its own checkpoints allow-listed (:func:`allowed_globals`):

- mmengine's ``HistoryBuffer`` (the ``message_hub`` logs of a training run)
  and the lookup of its statistics methods it pickles
  (``getattr(HistoryBuffer, 'mean')``; no other ``getattr``);
- numpy scalars, dtypes and arrays (the seed and the logged values in
  ``meta`` / ``message_hub``), under the names numpy 2 writes
  (``numpy._core.multiarray``) and numpy 1 wrote (``numpy.core.multiarray``).

So every checkpoint a Runner saves - ``load_from=``, ``--resume``,
``tools/test.py CKPT`` - and mmdet / mmseg model-zoo checkpoints (a state dict,
``meta`` with strings, numbers and numpy values, an optimizer state) load,
while a pickle that calls anything else is refused with an
:class:`UnsafeCheckpointError` naming the global it calls.

The allow-list is applied with ``torch.serialization.safe_globals`` around
each load, never added process-wide: code that calls ``torch.load`` itself
keeps torch's own rules.

Full unpickling (``weights_only=False``) only on request: the environment
variable ``MMCTX_UNSAFE_LOAD=1`` or ``--unsafe-load`` of ``tools/train.py``,
``tools/test.py`` and ``tools/analysis_tools/attention_stats.py`` (which set
that variable). Load only files you trust that way.

:func:`register_safe_loaders` (applied on ``import mmctx`` by
:mod:`mmctx.compat`) re-registers each scheme of mmengine's
``CheckpointLoader`` - local paths, ``http(s)://``, ``torchvision://`` /
``modelzoo://``, ``open-mmlab://`` / ``openmmlab://``, ``mmcls://``,
``pavi://``, ``s3://`` / ``petrel://`` - with a loader that goes through
:func:`load_torch_file`. Every caller of mmengine's ``_load_checkpoint`` /
``load_checkpoint`` / ``CheckpointLoader`` (Runner ``load_from`` and
``resume``, ``init_cfg=dict(type='Pretrained')``, mmdet's ``init_detector``,
mmseg's ``init_model``, mmctx's ``BottleneckAttentionInit``) is covered.
"""
import io
import os
import os.path as osp
import pickle
import re
import threading
from typing import Any, Callable, List, Optional

import torch

__all__ = [
    'UNSAFE_LOAD_ENV', 'UnsafeCheckpointError', 'unsafe_load_enabled',
    'enable_unsafe_load', 'allowed_globals', 'load_torch_file',
    'register_safe_loaders', 'SAFE_SCHEMES', 'add_unsafe_load_arg',
    'apply_unsafe_load_arg', 'latest_checkpoint'
]

#: environment variable that turns full unpickling on (``1``/``true``/...)
UNSAFE_LOAD_ENV = 'MMCTX_UNSAFE_LOAD'

_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('', '0', 'false', 'no', 'off')

HOW_TO_OPT_IN = (
    'If you trust this file, load it with full unpickling: pass '
    '--unsafe-load to tools/train.py, tools/test.py or '
    f'tools/analysis_tools/attention_stats.py, or set {UNSAFE_LOAD_ENV}=1 '
    'in the environment; or allow just this global with '
    'torch.serialization.add_safe_globals([...]).')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs more than the safe unpickler allows."""


def unsafe_load_enabled() -> bool:
    """Whether ``MMCTX_UNSAFE_LOAD`` asks for full unpickling.

    Raises:
        ValueError: the variable holds something other than a yes / no word.
    """
    value = os.environ.get(UNSAFE_LOAD_ENV, '').strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f'environment variable {UNSAFE_LOAD_ENV}={os.environ[UNSAFE_LOAD_ENV]!r}'
        f' is not understood: use 1 (full unpickling of trusted files) or 0')


def enable_unsafe_load() -> None:
    """Turn full unpickling on for this process and the processes it starts
    (what the tools' ``--unsafe-load`` does)."""
    os.environ[UNSAFE_LOAD_ENV] = '1'


def _history_buffer_method(obj, name):
    """Stands in for ``builtins.getattr`` while a checkpoint is unpickled.

    ``HistoryBuffer.__getstate__`` saves its statistics methods, which
    pickle as ``getattr(HistoryBuffer, 'mean')``; a general ``getattr``
    would let a pickle reach any attribute of any object it can build, so
    only that lookup is answered.
    """
    from mmengine.logging import HistoryBuffer
    if (obj is HistoryBuffer and isinstance(name, str)
            and not name.startswith('_')
            and callable(HistoryBuffer.__dict__.get(name))):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is refused: only the statistics '
        'methods of mmengine\'s HistoryBuffer are looked up this way')


def allowed_globals() -> List[Any]:
    """The globals allowed on top of torch's ``weights_only`` defaults: the
    types mmengine writes into the checkpoints it saves.

    Entries are objects or ``(object, 'module.name')`` pairs (the name a
    pickle written by numpy 1 uses for the same function), the form
    ``torch.serialization.safe_globals`` takes.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # numpy 1
        multiarray = np.core.multiarray
    allowed = [HistoryBuffer, np.ndarray, np.dtype,
               (_history_buffer_method, 'builtins.getattr')]
    for func in (multiarray._reconstruct, multiarray.scalar):
        # numpy 2 pickles them as numpy._core.multiarray.*, numpy 1 as
        # numpy.core.multiarray.*
        allowed.append(func)
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            allowed.append((func, f'{module}.{func.__name__}'))
    # numpy >= 1.25 gives each dtype its own class (numpy.dtypes.Float64DType
    # ...); unpickling a dtype builds an instance of that class
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes)
                    if name.endswith('DType')
                    and isinstance(getattr(dtypes, name), type)]
    return allowed


_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')
# torch's allow-list is one global set: one safe load at a time edits it
_ALLOW_LOCK = threading.Lock()


def _refusal(source: str, err: Exception) -> UnsafeCheckpointError:
    text = str(err)
    found = _GLOBAL.search(text)
    if found:
        name = found.group(1)
        if '.' not in name:  # torch drops the module of builtins
            name = f'builtins.{name}'
        what = (f'it calls {name!r}, which is not among the globals '
                'allowed for safe loading')
    else:
        reason = text.split('WeightsUnpickler error:')[-1].strip()
        reason = reason.split('\n')[0][:300]
        what = f'the safe unpickler refused it ({reason})'
    return UnsafeCheckpointError(
        f'refused to load the checkpoint {source}: {what}. Checkpoints are '
        'loaded with torch.load(weights_only=True) and only the types '
        'mmengine writes allowed (mmctx.utils.checkpoint.allowed_globals); '
        f'unpickling anything else can run arbitrary code. {HOW_TO_OPT_IN}')


def _guarded_load(load: Callable[[bool], Any], source: str) -> Any:
    """Run ``load(weights_only)`` safely unless full unpickling is enabled."""
    if unsafe_load_enabled():
        from mmengine.logging import print_log
        print_log(f'{UNSAFE_LOAD_ENV} is set: loading {source} with full '
                  'unpickling (weights_only=False)', logger='current',
                  level=30)
        return load(False)
    try:
        with _ALLOW_LOCK:
            # only what is not allowed already, so that leaving the context
            # does not take back what the user allowed process-wide
            present = set(torch.serialization.get_safe_globals())
            extra = [g for g in allowed_globals() if g not in present]
            with torch.serialization.safe_globals(extra):
                return load(True)
    except pickle.UnpicklingError as err:
        raise _refusal(source, err) from err


def load_torch_file(f, map_location=None, source: Optional[str] = None):
    """``torch.load`` of a file name or file object, safe by default.

    Args:
        f: path or readable binary file object.
        map_location: as in ``torch.load``.
        source (str, optional): what to call the file in an error message;
            defaults to ``f`` when it is a path.

    Raises:
        UnsafeCheckpointError: the pickle calls a global that is not allowed
            (it names it, and says how to opt in to full unpickling).
    """
    if source is None:
        source = f if isinstance(f, (str, os.PathLike)) else '<file object>'
    return _guarded_load(
        lambda weights_only: torch.load(
            f, map_location=map_location, weights_only=weights_only),
        str(source))


# --------------------------------------------------------------------------
# the loaders of mmengine's CheckpointLoader schemes, loading through
# load_torch_file; the URL tables are read from mmengine at call time


def load_from_local(filename, map_location=None):
    """A checkpoint file on local disk."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_torch_file(filename, map_location)


def _load_url(url, model_dir, map_location, progress):
    return _guarded_load(
        lambda weights_only: torch.hub.load_state_dict_from_url(
            url, model_dir=model_dir, map_location=map_location,
            progress=progress, weights_only=weights_only), url)


def load_from_http(filename, map_location=None, model_dir=None,
                   progress=os.isatty(0)):
    """A checkpoint at an ``http(s)://`` URL, downloaded to torch's hub cache
    (local rank 0 first, as mmengine does) and loaded safely."""
    from mmengine.dist import get_dist_info
    rank, world_size = get_dist_info()
    if rank == 0:
        checkpoint = _load_url(filename, model_dir, map_location, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = _load_url(filename, model_dir, map_location, progress)
    return checkpoint


def _model_url(table: dict, name: str, scheme: str) -> str:
    if name not in table:
        raise KeyError(f'{scheme}{name}: no such model name in mmengine\'s '
                       f'{scheme} table')
    return table[name]


def load_from_torchvision(filename, map_location=None):
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``)."""
    import mmengine.runner.checkpoint as ckpt
    from mmengine.logging import print_log
    if filename.startswith('modelzoo://'):
        print_log('The URL scheme of "modelzoo://" is deprecated, please '
                  'use "torchvision://" instead', logger='current',
                  level=30)
        scheme = 'modelzoo://'
    else:
        scheme = 'torchvision://'
    url = _model_url(ckpt.get_torchvision_models(), filename[len(scheme):],
                     scheme)
    return load_from_http(url, map_location=map_location)


def load_from_openmmlab(filename, map_location=None):
    """``open-mmlab://NAME`` / ``openmmlab://NAME``: a URL, or a file under
    the mmengine home directory, from mmengine's ``openmmlab.json`` and the
    user's ``open_mmlab.json``."""
    import mmengine.runner.checkpoint as ckpt
    from mmengine.logging import print_log
    scheme = ('open-mmlab://' if filename.startswith('open-mmlab://')
              else 'openmmlab://')
    name = filename[len(scheme):]
    deprecated = ckpt.get_deprecated_model_names()
    if name in deprecated:
        print_log(f'{scheme}{name} is deprecated in favor of '
                  f'{scheme}{deprecated[name]}', logger='current', level=30)
        name = deprecated[name]
    url = _model_url(ckpt.get_external_models(), name, scheme)
    if url.startswith(('http://', 'https://')):
        return load_from_http(url, map_location=map_location)
    path = osp.join(ckpt._get_mmengine_home(), url)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} can not be found.')
    return load_torch_file(path, map_location)


def load_from_mmcls(filename, map_location=None):
    """``mmcls://NAME``: an mmcls model-zoo URL; keeps the backbone weights."""
    import mmengine.runner.checkpoint as ckpt
    url = _model_url(ckpt.get_mmcls_models(), filename[len('mmcls://'):],
                     'mmcls://')
    return ckpt._process_mmcls_checkpoint(
        load_from_http(url, map_location=map_location))


def load_from_ceph(filename, map_location=None, backend='petrel'):
    """``s3://`` / ``petrel://`` through mmengine's file backend."""
    from mmengine.fileio import get_file_backend
    file_backend = get_file_backend(
        filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return load_torch_file(buffer, map_location, source=filename)


def load_from_pavi(filename, map_location=None):
    """``pavi://`` model cloud files."""
    from tempfile import TemporaryDirectory
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError(
            'Please install pavi to load checkpoint from modelcloud.')
    model = modelcloud.get(filename[len('pavi://'):])
    with TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return load_torch_file(downloaded, map_location, source=filename)


#: mmengine CheckpointLoader prefixes -> safe loader
SAFE_SCHEMES = {
    '': load_from_local,
    ('http://', 'https://'): load_from_http,
    ('modelzoo://', 'torchvision://'): load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    'pavi://': load_from_pavi,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
}


def register_safe_loaders() -> None:
    """Register the safe loaders for every scheme of mmengine's
    ``CheckpointLoader`` (replacing mmengine's own, which fully unpickle
    ``http(s)`` downloads and leave local files to torch's default)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader in SAFE_SCHEMES.items():
        CheckpointLoader.register_scheme(
            list(prefixes) if isinstance(prefixes, tuple) else prefixes,
            loader, force=True)


# --------------------------------------------------------------------------
# command-line helpers of the tools


def add_unsafe_load_arg(parser) -> None:
    """``--unsafe-load``: full unpickling of the checkpoints a tool loads."""
    parser.add_argument(
        '--unsafe-load', action='store_true',
        help='load checkpoints with full unpickling (torch.load with '
        'weights_only=False), as mmengine did before torch 2.6. A checkpoint '
        'can then run arbitrary code: only for files you trust. By default '
        'only tensors, plain containers and the types mmengine writes '
        f'(numpy values, HistoryBuffer) are unpickled. Same as {UNSAFE_LOAD_ENV}=1')


def apply_unsafe_load_arg(args) -> None:
    """Act on ``--unsafe-load`` (and check ``MMCTX_UNSAFE_LOAD`` early)."""
    if getattr(args, 'unsafe_load', False):
        enable_unsafe_load()
    unsafe_load_enabled()  # a malformed value fails now, not at the first load


def latest_checkpoint(work_dir: str) -> str:
    """The checkpoint to resume in ``work_dir``: the one ``last_checkpoint``
    names (what ``CheckpointHook`` writes after each save).

    A path recorded relative to another working directory, or in a work dir
    that was moved since, is looked up in ``work_dir`` by its file name.

    Raises:
        FileNotFoundError: ``work_dir`` does not exist, has no
            ``last_checkpoint``, or the file it names is gone.
    """
    hint = ('pass a checkpoint (--resume CKPT), or --resume auto to resume '
            'when there is a checkpoint and start from scratch otherwise')
    if not osp.isdir(work_dir):
        raise FileNotFoundError(
            f'--resume: the work dir {work_dir} does not exist (mistyped '
            f'--work-dir?): nothing to resume; {hint}')
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        raise FileNotFoundError(
            f'--resume: nothing to resume in {work_dir}: it has no '
            f'last_checkpoint file (no checkpoint was saved there); {hint}')
    with open(record) as f:
        named = f.read().strip()
    for path in (named, osp.join(work_dir, osp.basename(named))):
        if named and osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'--resume: {record} names {named!r}, which does not exist; {hint}')
