"""Compatibility fixes for newer torch / numpy in mmengine, mmdet and mmseg.

mmdet 3.3.0, mmseg 1.2.2 and mmengine 0.10.7 were written for torch < 2.6
and numpy < 2. Every fix here is one small, named function that patches the
smallest thing it can through the library's own extension points; it is
applied once by :func:`apply_all` when ``mmctx`` is imported, and each has a
test in ``tests/test_foundation/test_compat.py``.

Fixes:

``checkpoint_weights_only``
    torch 2.6 changed the default of ``torch.load(weights_only=...)`` to
    ``True``. mmengine's checkpoints are full pickles: ``meta`` holds numpy
    scalars and arrays (the seed, the ``MessageHub``'s ``HistoryBuffer``
    logs) and the optimizer / scheduler states, so with the new default
    every ``load_from``/``--resume`` of a file mmengine wrote itself fails
    with ``UnpicklingError: Weights only load failed``. The fix re-registers
    mmengine's ``CheckpointLoader`` scheme for files on local disk (the
    empty prefix: plain paths) with a loader that passes
    ``weights_only=False`` - the behaviour these libraries were written for.
    Remote schemes (``http(s)://``, ``torchvision://``, ...) keep torch's
    safe default: they load files the user did not write, and the
    pretrained backbones they serve are plain tensors.
"""
import os.path as osp

import torch

__all__ = ['apply_all', 'APPLIED', 'load_local_checkpoint']

#: names of the fixes applied so far (``apply_all`` is idempotent)
APPLIED = []


def load_local_checkpoint(filename, map_location=None):
    """Load a checkpoint file from local disk as mmengine did before torch
    2.6: a full unpickle (``weights_only=False``).

    Only for files the user trusts (their own training runs); unpickling can
    run arbitrary code.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def _fix_checkpoint_weights_only():
    from mmengine.runner.checkpoint import CheckpointLoader

    @CheckpointLoader.register_scheme(prefixes='', force=True)
    def load_from_local(filename, map_location=None):
        return load_local_checkpoint(filename, map_location)


def _torch_defaults_to_weights_only():
    """Whether this torch's ``torch.load`` defaults to ``weights_only=True``."""
    version = tuple(int(v) for v in torch.__version__.split('+')[0]
                    .split('.')[:2])
    return version >= (2, 6)


FIXES = {
    'checkpoint_weights_only':
    (_torch_defaults_to_weights_only, _fix_checkpoint_weights_only),
}


def apply_all():
    """Apply every fix whose condition holds; safe to call repeatedly."""
    for name, (needed, fix) in FIXES.items():
        if name in APPLIED or not needed():
            continue
        fix()
        APPLIED.append(name)
    return list(APPLIED)


apply_all()
