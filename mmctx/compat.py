"""Compatibility fixes for newer torch / numpy in mmengine, mmdet and mmseg.

mmdet 3.3.0, mmseg 1.2.2 and mmengine 0.10.7 were written for torch < 2.6
and numpy < 2. Every fix here is one small, named function that patches the
smallest thing it can through the library's own extension points; it is
applied once by :func:`apply_all` when ``mmctx`` is imported, and each has a
test in ``tests/test_compat.py``.

Fixes:

``safe_checkpoint_loading``
    torch 2.6 made ``torch.load`` default to ``weights_only=True``, which
    rejects mmengine's own checkpoints (numpy scalars and arrays and the
    ``MessageHub``'s ``HistoryBuffer`` logs in ``meta`` / ``message_hub``):
    ``load_from``, ``--resume`` and ``tools/test.py CKPT`` fail with
    ``UnpicklingError: Weights only load failed``. mmengine's ``http(s)://``
    loader (also behind ``torchvision://``, ``open-mmlab://`` and
    ``mmcls://``) goes through ``torch.hub.load_state_dict_from_url``, whose
    default is a full unpickle. The fix registers, for every scheme of
    mmengine's ``CheckpointLoader``, a loader that unpickles with
    ``weights_only=True`` and only the types mmengine writes allow-listed
    (:mod:`mmctx.utils.checkpoint`): mmengine's checkpoints load, and a
    pickle that calls anything else is refused with an error naming what it
    calls. Loading only becomes safer: full unpickling needs an explicit
    ``MMCTX_UNSAFE_LOAD=1`` (the tools' ``--unsafe-load``), and the
    allow-list is applied around each load, not added to torch's for the
    whole process.

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
import sys

import torch

__all__ = ['apply_all', 'APPLIED']

#: names of the fixes applied so far (``apply_all`` is idempotent)
APPLIED = []


def _fix_safe_checkpoint_loading():
    from .utils.checkpoint import register_safe_loaders
    register_safe_loaders()


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


def _torch_has_safe_globals():
    """Whether this torch can allow-list globals around one load
    (``torch.serialization.safe_globals``, torch >= 2.5)."""
    return hasattr(torch.serialization, 'safe_globals')


FIXES = {
    'safe_checkpoint_loading':
    (_torch_has_safe_globals, _fix_safe_checkpoint_loading),
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
