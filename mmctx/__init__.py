"""mmctx: global-context and non-local attention modules for OpenMMLab.

Importing this package (or naming it in a config's
``custom_imports=dict(imports=['mmctx'], allow_failed_imports=False)``)
applies the compatibility fixes of :mod:`mmctx.compat` and registers every
mmctx module in the mmengine / mmdet / mmseg registries.
"""
from .version import __version__
from . import compat  # noqa: F401  (must run before anything loads checkpoints)
from . import engine, evaluation, models  # noqa: F401  (registration)

__all__ = ['__version__']
