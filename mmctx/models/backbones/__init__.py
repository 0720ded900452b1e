"""Backbones for MMDetection 3.x (``mmdet.registry.MODELS``) and their plugins.

* :class:`ContextResNet` -- mmdet's ResNet whose plugins may sit at chosen
  blocks only (``blocks``) and after the residual sum (``'after_add'``).
* :class:`ResidualObjectContext` -- ``X + OCP(X)``, object context pooling
  as a residual backbone plugin (registered in mmengine's root ``MODELS``,
  like the other blocks).
"""
from .context_plugins import *  # noqa: F401,F403
from .context_resnet import *  # noqa: F401,F403
