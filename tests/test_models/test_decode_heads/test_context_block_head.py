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


# The thin heads: ContextBlockHead with their block as default context_cfg
THIN_HEADS = {
    'ContextBlockHead': (dict(context_cfg=GC), 'GlobalContextBlock'),
    'GCNLHead': (dict(num_heads=2), 'GCNLBlock'),
    'GloReHead': (dict(), 'GloReUnit'),
    'CGNLHead': (dict(groups=2), 'CompactGeneralizedNonLocal2d'),
    'EfficientAttentionHead': (dict(num_heads=2), 'EfficientAttention2d'),
    'ACFHead': (dict(), 'AttentionalClassFeature'),
}


def _thin(name, **kwargs):
    import mmctx  # noqa: F401
    from mmseg.registry import MODELS
    args, _ = THIN_HEADS[name]
    cfg = dict(type=name, in_channels=16, channels=8, num_classes=3,
               norm_cfg=dict(type='BN'), dropout_ratio=0.0, **args)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _fcn_with(head, middle):
    """mmseg's own FCNHead(num_convs=2, concat_input=True) with ``head``'s weights and
    ``middle`` between its two convs (a shared module, not a copy)."""
    from mmseg.models.decode_heads import FCNHead
    fcn = FCNHead(num_convs=2, concat_input=True, in_channels=16, channels=8, num_classes=3,
                  norm_cfg=dict(type='BN'), dropout_ratio=0.0)
    state = {k: v for k, v in head.state_dict().items() if not k.startswith('context_block.')}
    fcn.load_state_dict(state)  # strict: every FCN weight, and nothing else, is the head's
    fcn.convs = torch.nn.Sequential(fcn.convs[0], middle, fcn.convs[1])
    return fcn


def _randomised(head):
    from layer_helpers import randomise
    randomise(head, 0, std=0.2)  # the zero-initialised outputs too: the block acts
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.fill_(1.5)
    return head.eval()


@pytest.mark.parametrize('name', sorted(THIN_HEADS))
def test_thin_head_builds_its_block(name):
    from mmengine.registry import MODELS as ROOT_MODELS
    head = _thin(name)
    assert type(head.context_block) is ROOT_MODELS.get(THIN_HEADS[name][1])
    assert head.context_block.in_channels == head.channels == 8


@pytest.mark.parametrize('name', sorted(THIN_HEADS))
def test_thin_head_is_mmseg_fcn_with_the_block_between_its_convs(name):
    head = _randomised(_thin(name))
    x = torch.randn(2, 16, 5, 6)
    with torch.no_grad():
        out = head([x])
        torch.testing.assert_close(out, _fcn_with(head, head.context_block).eval()([x]))
        # the block takes part: the plain FCN (identity between the convs) differs
        plain = _fcn_with(head, torch.nn.Identity()).eval()([x])
        assert not torch.allclose(out, plain, atol=1e-3)
        # and with the block replaced by the identity the head is exactly that FCN
        head.context_block = torch.nn.Identity()
        torch.testing.assert_close(head([x]), plain)


@pytest.mark.parametrize('name', sorted(THIN_HEADS))
def test_thin_head_trains_its_block(name):
    head = _thin(name).train()
    out = head([torch.randn(2, 16, 5, 5)])
    assert out.shape == (2, 3, 5, 5)
    out.square().sum().backward()
    grads = [p.grad for p in head.context_block.parameters()]
    assert grads and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_forward_peak_memory_equals_mmseg_gchead():
    """The block's output is freed once the second conv has read it, as in
    mmseg's GCHead with the same layout (it used to be held through the
    concat: 8 % more at the peak for 1 x 512 x 97 x 97)."""
    from mmseg.registry import MODELS

    from mmctx.analysis.memory import peak_memory
    kw = dict(in_channels=64, channels=32, num_classes=19, norm_cfg=dict(type='BN'))
    ours = _head(GC, in_channels=64, channels=32).eval()
    theirs = MODELS.build(dict(type='GCHead', ratio=1 / 4, pooling_type='att',
                               fusion_types=('channel_add', ), **kw)).eval()
    x = torch.randn(1, 64, 40, 40)
    with torch.no_grad():
        peaks = [peak_memory(lambda m=m: m([x])) for m in (ours, theirs)]
    assert peaks[0] == peaks[1], peaks
