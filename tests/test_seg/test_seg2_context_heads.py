"""GCNet CCNet-style context heads (seed 001 §5.4): layout and Table 12a parameter overheads."""
import pytest
import torch


def _head(context_cfg, in_channels=2048, channels=512):
    import mmctx  # noqa: F401
    from mmseg.registry import MODELS
    return MODELS.build(dict(type='ContextBlockHead', in_channels=in_channels, channels=channels,
                             num_classes=19, context_cfg=context_cfg, norm_cfg=dict(type='BN')))


def _params(m):
    return sum(p.numel() for p in m.parameters())


# seed 001 Table 12a: overhead over the 70.96M baseline (mmcv's NL / GC blocks stand in for the
# contract blocks of mmctx.models.layers until those land).
@pytest.mark.parametrize('cfg,overhead', [
    (dict(type='NonLocal2d', reduction=4, use_scale=True, mode='embedded_gaussian'), 0.26e6),
    (dict(type='ContextBlock', ratio=1 / 4, pooling_type='att', fusion_types=('channel_add',)),
     0.13e6),
])
def test_table12_param_overhead(cfg, overhead):
    base = _params(_head(None))
    assert abs(_params(_head(cfg)) - base - overhead) <= 0.05 * overhead


def test_context_head_equals_manual_layout():
    head = _head(dict(type='ContextBlock', ratio=1 / 4, pooling_type='att',
                      fusion_types=('channel_add',)), in_channels=16, channels=8).eval()
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        y = head.convs[1](head.context_block(head.convs[0](x)))
        ref = head.conv_seg(head.conv_cat(torch.cat([x, y], 1)))
        torch.testing.assert_close(head([x]), ref)


def test_context_head_bad_cfg():
    with pytest.raises(ValueError, match='context_cfg'):
        _head('gc', in_channels=16, channels=8)
