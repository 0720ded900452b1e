"""CGNLHead (mmctx/models/decode_heads/cgnl_head.py): a ContextBlockHead with the CGNL
block (Yue et al., "Compact Generalized Non-local Network"); the block itself is tested
in tests/test_models/test_layers/test_cgnl.py, the layout in test_context_block_head.py."""
import pytest
from mmseg.registry import MODELS

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_cgnl_head_arguments_reach_the_block():
    import mmctx  # noqa: F401
    head = MODELS.build(dict(type='CGNLHead', in_channels=16, channels=8, groups=2,
                             kernel='gaussian', use_scale=True, order=2, gamma=0.5,
                             planes=8, num_classes=3))
    b = head.context_block
    assert (b.groups, b.kernel, b.use_scale, b.order, b.gamma, b.planes) == (
        2, 'gaussian', True, 2, 0.5, 8)
    default = MODELS.build(dict(type='CGNLHead', in_channels=32, channels=16, num_classes=3))
    b = default.context_block
    assert (b.groups, b.kernel, b.use_scale, b.order, b.gamma, b.planes) == (
        8, 'dot', False, 3, 1e-4, 8)


def test_cgnl_head_bad_block_args():
    import mmctx  # noqa: F401
    with pytest.raises(ValueError, match='kernel'):
        MODELS.build(dict(type='CGNLHead', in_channels=16, channels=8, kernel='cosine',
                          num_classes=3))
