"""Input checks shared by mmctx's necks: clear errors before a block fails."""
from torch import Tensor

__all__ = ['check_levels', 'check_size']


def check_levels(neck: str, inputs, expected: int) -> None:
    """Raise a ValueError unless ``inputs`` has ``expected`` levels."""
    if len(inputs) != expected:
        raise ValueError(f'{neck} expects {expected} input levels '
                         f'(in_channels has {expected} entries), got '
                         f'{len(inputs)}')


def check_size(neck: str, level: str, x: Tensor, min_size: int) -> None:
    """Raise a ValueError naming ``level`` if its map is below ``min_size``."""
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        raise ValueError(f'{neck}: feature map of {level} is {h}x{w}, smaller '
                         f'than the {min_size}x{min_size} its block needs; use '
                         f'larger images')
