"""Backbones for MMDetection 3.x (``mmdet.registry.MODELS``).

* :class:`ContextResNet` -- mmdet's ResNet whose plugins may sit at chosen
  blocks only (``blocks``) and after the residual sum (``'after_add'``).
"""
from .context_resnet import *  # noqa: F401,F403
