"""GCNet CCNet-style context heads (Cao et al. (GCNet) §5.4): layout and Table 12a parameter overheads."""
import pytest
import torch

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def _head(context_cfg, in_channels=2048, channels=512):
    import mmctx  # noqa: F401
    from mmseg.registry import MODELS
    return MODELS.build(dict(type='ContextBlockHead', in_channels=in_channels, channels=channels,
                             num_classes=19, context_cfg=context_cfg, norm_cfg=dict(type='BN')))


def _params(m):
    return sum(p.numel() for p in m.parameters())


NL = dict(type='NonLocal2dBlock', reduction=4, mode='embedded_gaussian')
SNL = dict(type='SimplifiedNonLocal2d')
GC = dict(type='GlobalContextBlock', ratio=4, pooling='att', fusion='add')


# Cao et al. (GCNet) Table 12a: NL / SNL / GC head overheads over the 70.96M baseline (+0.26 / +0.26 / +0.13)
@pytest.mark.parametrize('cfg,overhead', [(NL, 0.26e6), (SNL, 0.26e6), (GC, 0.13e6)])
def test_table12_param_overhead(cfg, overhead):
    base = _params(_head(None))
    assert abs(_params(_head(cfg)) - base - overhead) <= 0.05 * overhead


@pytest.mark.parametrize('ours,mmcv,diff', [
    (NL, dict(type='NonLocal2d', reduction=4, mode='embedded_gaussian'), 0),
    # mmcv's W_k has a bias, which the softmax over positions cancels; ours has none
    (GC, dict(type='ContextBlock', ratio=1 / 4, pooling_type='att',
              fusion_types=('channel_add', )), -1),
    (dict(GC, pooling='avg', fusion='mul'),
     dict(type='ContextBlock', ratio=1 / 4, pooling_type='avg', fusion_types=('channel_mul', )),
     0),
])
def test_mmctx_blocks_match_mmcv_blocks_in_size(ours, mmcv, diff):
    """The configs moved from mmcv's NonLocal2d / ContextBlock to mmctx's blocks, same sizes."""
    assert _params(_head(ours)) - _params(_head(mmcv)) == diff


def test_context_head_equals_manual_layout():
    head = _head(GC, in_channels=16, channels=8).eval()
    for p in head.context_block.channel_add.parameters():  # leave the zero-init identity
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        y = head.convs[1](head.context_block(head.convs[0](x)))
        ref = head.conv_seg(head.conv_cat(torch.cat([x, y], 1)))
        torch.testing.assert_close(head([x]), ref)
        plain = head.conv_seg(head.conv_cat(torch.cat([x, head.convs[1](head.convs[0](x))], 1)))
        assert not torch.allclose(head([x]), plain, atol=1e-3)  # the block takes part


def test_context_head_bad_cfg():
    with pytest.raises(ValueError, match='context_cfg'):
        _head('gc', in_channels=16, channels=8)
