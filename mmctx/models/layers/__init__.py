"""The context-module library: one file per family of attention block.

Every block is registered in mmengine's root ``MODELS`` registry, so the
builders of mmcv, mmdet and mmseg all find it (e.g. as a ResNet plugin).
"""
from .attention import *  # noqa: F401,F403
from .nonlocal_block import *  # noqa: F401,F403
from .global_context import *  # noqa: F401,F403
from .gcnl import *  # noqa: F401,F403
from .bottleneck_attention import *  # noqa: F401,F403
from .efficient_nonlocal import *  # noqa: F401,F403
from .object_context import *  # noqa: F401,F403
