"""The context-module library: one file per family of attention block.

Every block is registered in mmengine's root ``MODELS`` registry, so the
builders of mmcv, mmdet and mmseg all find it (e.g. as a ResNet plugin, or
as the ``context_cfg`` of ``ContextBlockHead``).

The block contract (checked for every registered block of this package by
``tests/test_models/test_layers/test_attention_block_contract.py``):

* ``in_channels`` is the first parameter; a block maps (B, C, H, W) to
  (B, C, H, W), any batch (0 included) and any map from 1x1.
* Arguments are checked at construction with the helpers of
  :mod:`.checks` (a ``ValueError`` naming the argument), not by asserts or
  raw torch errors.
* ``identity_start``: a block whose output equals its input at the start
  (a zero-initialised last projection or norm) says so with
  ``identity_start == True`` and has an ``init_weights()`` that restores
  that start from any weights, so an enclosing module can re-initialise it
  after its own ``init_cfg`` (mmengine's ``BaseModule.init_weights`` calls
  its children's ``init_weights``). A block without a defined start
  (CGNL, efficient attention, GloRe, ACF: PyTorch's default init, as their
  papers' modules) has ``identity_start == False``.
* ``get_attention(x)`` where the block has an attention map over positions: a
  (B, heads, queries, keys) tensor, queries the H*W positions (or 1 for a
  query-independent map), keys the (sub-sampled) positions, as the analysis
  tools (``mmctx.analysis.attention_stats``) read it; its rows sum to 1 unless
  the block's ``attention_normalised`` is False (dot-product NL divides by
  N). Maps of another kind get another name (efficient attention's
  ``get_key_maps``, ACF's ``get_class_attention``, GloRe's
  ``get_projection``); a block with no map over positions (CGNL, whose kernel
  is never formed; GloRe) has no ``get_attention`` and says why.
* ``impl`` (``'fused'`` / ``'explicit'``) where the block has two paths to
  the same output; both must agree.
"""
from .attention import *  # noqa: F401,F403
from .nonlocal_block import *  # noqa: F401,F403
from .global_context import *  # noqa: F401,F403
from .gcnl import *  # noqa: F401,F403
from .bottleneck_attention import *  # noqa: F401,F403
from .efficient_nonlocal import *  # noqa: F401,F403
from .object_context import *  # noqa: F401,F403
from .cgnl import *  # noqa: F401,F403
from .efficient_attention import *  # noqa: F401,F403
from .glore import *  # noqa: F401,F403
from .acf import *  # noqa: F401,F403
