"""GCNLHead (mmctx/models/decode_heads/gcnl_head.py), Woo et al. (GCNL) Table 1: an FCN head
with the GCNL block between its convs."""
import pytest
import torch
from mmseg.registry import MODELS

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def test_gcnl_head_is_fcn_with_the_block_between_its_convs():
    import mmctx  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')  # an earlier test in this process may have set mmdet
    torch.manual_seed(0)
    head = MODELS.build(dict(type='GCNLHead', in_channels=32, channels=16, num_heads=4,
                             num_classes=5, in_index=0, norm_cfg=dict(type='BN'),
                             dropout_ratio=0.0)).eval()
    for p in head.gcnl_block.out.parameters():  # leave the zero-init identity
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 32, 5, 6)
    with torch.no_grad():
        y = head.convs[1](head.gcnl_block(head.convs[0](x)))
        expected = head.conv_seg(head.conv_cat(torch.cat([x, y], 1)))
        out = head([x])
        assert torch.allclose(out, expected, atol=1e-5)
        plain = head.conv_seg(head.conv_cat(torch.cat([x, head.convs[1](head.convs[0](x))], 1)))
        assert not torch.allclose(out, plain, atol=1e-3)  # the block takes part
