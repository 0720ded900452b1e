"""Metrics registered in ``mmseg.registry.METRICS``: one metric per file."""
from .boundary_fscore_metric import *  # noqa: F401,F403
from .fwiou_metric import *  # noqa: F401,F403
