"""Necks for MMDetection 3.x, registered in ``mmdet.registry.MODELS``."""
from .ebfpn import *  # noqa: F401,F403
from .enlfpn import *  # noqa: F401,F403
