"""Registration of every mmctx module, in one place (as ``mmdet.utils.register_all_modules``)."""
from typing import Optional

from mmengine.registry import init_default_scope as _init_default_scope

from .tool_config import SCOPES


def register_all_modules(init_default_scope: Optional[str] = None) -> None:
    """Import mmctx's modules so that every registry holds them.

    The blocks go to mmengine's root ``MODELS`` (:mod:`mmctx.models.layers`), the backbone and
    necks to mmdet's ``MODELS``, the decode heads to mmseg's ``MODELS``, the metrics to mmseg's
    ``METRICS`` and the hooks to mmengine's root ``HOOKS``; importing :mod:`mmctx` also applies
    :mod:`mmctx.compat`'s fixes (before anything loads a checkpoint).

    Args:
        init_default_scope: ``None`` or ``False`` (the default): only fill the registries.
            ``'mmdet'`` or ``'mmseg'``: also make it the default scope, as a config's
            ``default_scope`` does (mmctx has no registry scope of its own, so unlike mmdet's
            function there is no ``True``).
    """
    if init_default_scope not in (None, False) + SCOPES:
        raise ValueError(f'init_default_scope must be None or one of {SCOPES} (mmctx '
                         f'has no scope of its own), got {init_default_scope!r}')
    import mmctx.compat  # noqa: F401
    import mmctx.engine  # noqa: F401
    import mmctx.evaluation  # noqa: F401
    import mmctx.models  # noqa: F401

    if init_default_scope:
        _init_default_scope(init_default_scope)
