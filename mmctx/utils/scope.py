"""The task library of a config: the one place mmctx reads ``default_scope``.

The rule: a config's task library is its ``default_scope``, which must be
``'mmdet'`` or ``'mmseg'``. mmctx never guesses: a config without one (the
key missing, or ``None``) or with another scope is refused with a
``ValueError`` naming the value, because a segmentation config read as a
detection one (mmdet's tools default to ``'mmdet'``, mmseg's to ``'mmseg'``)
fails much later, in a registry, with an error that does not say why. Every
mmctx config inherits its scope from ``mmdet::_base_/default_runtime.py`` or
``mmseg::_base_/default_runtime.py``; a config written by hand sets
``default_scope = 'mmdet'`` or ``'mmseg'``.
"""
from typing import Mapping

__all__ = ['SCOPES', 'task_scope']

SCOPES = ('mmdet', 'mmseg')


def task_scope(cfg: Mapping) -> str:
    """``'mmdet'`` or ``'mmseg'``: the ``default_scope`` of ``cfg`` (a Config or dict).

    Raises a ``ValueError`` naming the value when it is missing or neither.
    """
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        missing = ' (the config has none)' if scope is None else ''
        raise ValueError(
            f'default_scope must be mmdet or mmseg, got {scope!r}{missing}: set it to one '
            f"of {SCOPES} or inherit 'mmdet::_base_/default_runtime.py' or "
            "'mmseg::_base_/default_runtime.py'")
    return scope
