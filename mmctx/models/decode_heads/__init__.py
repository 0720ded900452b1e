"""Decode heads for MMSegmentation 1.x, registered in ``mmseg.registry.MODELS``."""
from .base_oc_head import *  # noqa: F401,F403
from .pyramid_oc_head import *  # noqa: F401,F403
from .asp_oc_head import *  # noqa: F401,F403
from .gcnl_head import *  # noqa: F401,F403
from .context_block_head import *  # noqa: F401,F403
from .acf_head import *  # noqa: F401,F403
from .glore_head import *  # noqa: F401,F403
from .cgnl_head import *  # noqa: F401,F403
from .efficient_attention_head import *  # noqa: F401,F403
