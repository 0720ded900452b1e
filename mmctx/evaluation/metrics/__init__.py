"""Metrics registered in ``mmseg.registry.METRICS``."""
from .segmentation import *  # noqa: F401,F403
