"""Argument checks shared by the attention blocks.

Every check raises a :class:`ValueError` that names the argument and the
value it got, at construction time, so that a bad config fails before a
forward pass turns it into a raw torch error (a float channel count inside
``nn.Conv2d``, a negative width inside a ``reshape``, mmcv's "Cannot find
None in registry" for an unknown norm type).
"""
import inspect
import numbers
from typing import Iterable, Optional

__all__ = [
    'check_int', 'check_channels', 'check_reduction', 'check_divisible',
    'check_choice', 'check_probability', 'check_norm_cfg'
]


def _where(owner: str) -> str:
    """The ``'Owner: '`` prefix of a message (empty without an owner)."""
    return f'{owner}: ' if owner else ''


def check_int(name: str, value, minimum: int = 1, allow_none: bool = False,
              owner: str = '') -> Optional[int]:
    """``int(value)`` if it is an integer (not a bool) >= ``minimum``, else raise.

    ``None`` is accepted (and returned) only with ``allow_none``, where it
    means "the default"; floats and strings are refused, so that a typo in a
    config fails at build time with the argument's name. ``owner`` (a class
    name) prefixes the message.
    """
    if value is None and allow_none:
        return None
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < minimum):
        extra = ' or None (the default)' if allow_none else ''
        raise ValueError(f'{_where(owner)}{name} must be an int >= {minimum}{extra}, '
                         f'got {value!r}')
    return int(value)


def check_channels(name: str, value) -> int:
    """A channel count: an int >= 1."""
    return check_int(name, value, 1)


def check_reduction(reduction, in_channels: int, exact: bool = False,
                    name: str = 'reduction') -> int:
    """``C // reduction`` must be >= 1; with ``exact`` reduction must divide C.

    ``in_channels`` must have been checked already.
    """
    if (isinstance(reduction, bool) or not isinstance(reduction, int)
            or reduction < 1 or in_channels // reduction < 1
            or (exact and in_channels % reduction != 0)):
        need = 'dividing' if exact else '<='
        raise ValueError(f'{name}={reduction!r} must be a positive int {need} '
                         f'in_channels={in_channels}')
    return reduction


def check_divisible(channels: int, num_heads, what: str = 'channels') -> None:
    """Raise a ValueError naming both numbers if heads do not split channels."""
    if (isinstance(num_heads, bool) or not isinstance(num_heads, int)
            or num_heads < 1 or channels % num_heads != 0):
        raise ValueError(f'num_heads={num_heads!r} must be an int >= 1 that '
                         f'divides {what}={channels}')


def check_choice(name: str, value, choices: Iterable, owner: str = ''):
    """``value`` if it is one of ``choices``, else raise."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f'{_where(owner)}{name} must be one of {choices}, got {value!r}')
    return value


def check_probability(name: str, value) -> float:
    """A dropout rate: a real number in [0, 1)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not 0.0 <= value < 1.0):
        raise ValueError(f'{name} must be a number in [0, 1), got {value!r}')
    return float(value)


def check_norm_cfg(norm_cfg: Optional[dict], name: str = 'norm_cfg', owner: str = ''):
    """``None`` or a dict whose ``type`` mmcv's ``build_norm_layer`` can find.

    A class is accepted as is; a string is looked up in mmengine's ``MODELS``
    under the current default scope, as ``build_norm_layer`` does.
    """
    if norm_cfg is None:
        return None
    name = _where(owner) + name
    if not isinstance(norm_cfg, dict) or 'type' not in norm_cfg:
        raise ValueError(f'{name} must be None or a dict with a "type" key, '
                         f'got {norm_cfg!r}')
    norm_type = norm_cfg['type']
    if inspect.isclass(norm_type):
        return norm_cfg
    if not isinstance(norm_type, str):
        raise ValueError(f'{name}: type must be a str or a class, got '
                         f'{norm_type!r}')
    from mmengine.registry import MODELS
    import mmcv.cnn  # noqa: F401  (registers BN, GN, LN, SyncBN, IN, ...)
    with MODELS.switch_scope_and_registry(None) as registry:
        found = registry.get(norm_type)
    if found is None:
        raise ValueError(f'{name}: unknown norm type {norm_type!r} (not in the '
                         f'registry of scope {registry.scope!r}; e.g. "BN", '
                         f'"SyncBN", "GN", "LN", "IN")')
    return norm_cfg
