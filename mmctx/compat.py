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

``plugin_error_names_type``
    mmcv 2.1.0's ``build_plugin_layer`` - the builder of every ResNet
    ``plugins=[dict(cfg=dict(type=...))]`` entry, the way mmctx's context
    blocks enter a backbone - reports an unknown type as
    ``KeyError: 'Cannot find None in registry ...'``: it formats the failed
    lookup's result instead of the name. The fix wraps the builder so that
    an unregistered type raises a ``KeyError`` naming it (and the registry
    it was looked up in) before mmcv's lookup runs; every module that
    imported the builder by name gets the wrapper.

``cpu_distributed``
    mmengine's ``pytorch`` launcher (``tools/dist_train.sh``) assumes CUDA:
    ``_init_dist_pytorch`` calls ``torch.cuda.set_device`` (an
    ``AttributeError`` on a CPU build of torch) and the Runner wraps the
    model in ``MMDistributedDataParallel(device_ids=[LOCAL_RANK])``, which
    torch refuses for a CPU module. With no CUDA device the fix initializes
    the process group without ``set_device`` (``gloo`` instead of the
    default ``nccl``, with a warning) and drops ``device_ids`` for CPU
    modules, so multi-process training and testing run on CPU machines too.
    Nothing changes where CUDA is available.
"""
import functools
import os.path as osp
import sys

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


def _fix_plugin_error_names_type():
    import mmcv.cnn.bricks.plugin as plugin_mod
    from mmengine.registry import MODELS
    original = plugin_mod.build_plugin_layer

    @functools.wraps(original)
    def build_plugin_layer(cfg, postfix='', **kwargs):
        layer_type = cfg.get('type') if isinstance(cfg, dict) else None
        if isinstance(layer_type, str):
            # the same lookup mmcv does: current scope, then the root MODELS
            with MODELS.switch_scope_and_registry(None) as registry:
                found = registry.get(layer_type)
            if found is None:
                raise KeyError(
                    f'plugin type {layer_type!r} is not registered (looked '
                    f'up in the {registry.scope!r} registry and its parents):'
                    ' check the spelling, and that the package defining it '
                    "is imported (e.g. custom_imports=dict(imports=['mmctx']))")
        return original(cfg, postfix, **kwargs)

    build_plugin_layer.__wrapped_by_mmctx__ = True
    # mmcv's own packages and any module that already did
    # `from mmcv.cnn import build_plugin_layer` (mmdet / mmseg ResNets)
    for module in list(sys.modules.values()):
        if getattr(module, 'build_plugin_layer', None) is original:
            module.build_plugin_layer = build_plugin_layer


def _fix_cpu_distributed():
    import mmengine.dist.utils as dist_utils
    from mmengine.logging import print_log
    from mmengine.model.wrappers import MMDistributedDataParallel
    init_pytorch = dist_utils._init_dist_pytorch

    @functools.wraps(init_pytorch)
    def _init_dist_pytorch(backend, init_backend='torch', **kwargs):
        if torch.cuda.is_available() or init_backend != 'torch':
            return init_pytorch(backend, init_backend=init_backend, **kwargs)
        if backend == 'nccl':
            print_log('no CUDA device: torch.distributed backend gloo '
                      'instead of nccl', logger='current')
            backend = 'gloo'
        torch.distributed.init_process_group(backend=backend, **kwargs)

    dist_utils._init_dist_pytorch = _init_dist_pytorch

    ddp_init = MMDistributedDataParallel.__init__

    @functools.wraps(ddp_init)
    def __init__(self, module, detect_anomalous_params=False, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and not torch.cuda.is_available():
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        ddp_init(self, module,
                 detect_anomalous_params=detect_anomalous_params, **kwargs)

    MMDistributedDataParallel.__init__ = __init__


def _always():
    return True


def _torch_defaults_to_weights_only():
    """Whether this torch's ``torch.load`` defaults to ``weights_only=True``."""
    version = tuple(int(v) for v in torch.__version__.split('+')[0]
                    .split('.')[:2])
    return version >= (2, 6)


FIXES = {
    'checkpoint_weights_only':
    (_torch_defaults_to_weights_only, _fix_checkpoint_weights_only),
    'plugin_error_names_type': (_always, _fix_plugin_error_names_type),
    'cpu_distributed': (_always, _fix_cpu_distributed),
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
