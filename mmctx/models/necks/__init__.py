"""Necks for MMDetection 3.x, registered in ``mmdet.registry.MODELS``.

One neck per file: ``ebfpn.py`` (EBFPN, Woo et al., GCNL), ``enlfpn.py``
(ENLFPN, Levi & Ullman, ENL), ``sa_fpn.py`` (SAFPN) and
``c4_self_attention_neck.py`` (C4SelfAttentionNeck), both Lee, Kim, Jung,
"Improving Object Detection Quality by Incorporating Global Contexts via
Self-Attention".
"""
from .c4_self_attention_neck import *  # noqa: F401,F403
from .ebfpn import *  # noqa: F401,F403
from .enlfpn import *  # noqa: F401,F403
from .sa_fpn import *  # noqa: F401,F403
