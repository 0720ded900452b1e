"""ContextResNet: plugins at chosen blocks / after the residual add, against a
plain mmdet ResNet run block by block with the plugin applied by hand."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS

from mmctx.models.backbones import ContextResNet
from mmctx.models.layers import ResidualObjectContext
from mmctx.models.layers import ObjectContextPooling

pytestmark = pytest.mark.usefixtures('mmdet_scope')

# ResNet-50 at 1/8 width: stages of 3, 4, 6, 3 blocks, planes 8..64, outputs 32..256
SMALL = dict(depth=50, base_channels=8, norm_eval=False)


def _nl(**kwargs):
    # zero_init=False: the plugin changes its input, so a misplaced one shows
    return dict(type='NonLocal2dBlock', reduction=2, zero_init=False, **kwargs)


def _pair(plugins, **kwargs):
    """(ContextResNet with ``plugins``, plain mmdet ResNet with the same weights)."""
    torch.manual_seed(0)
    net = ContextResNet(plugins=plugins, **SMALL, **kwargs)
    for p in net.parameters():  # BN / plugin params away from their trivial init
        p.data.add_(0.05 * torch.randn_like(p))
    plain = ResNet(**SMALL, **kwargs)
    missing, unexpected = plain.load_state_dict(net.state_dict(), strict=False)
    assert not missing
    net.eval()  # mmdet's ResNet.train() returns None
    plain.eval()
    return net, plain


def _block_ref(block, x, after_conv3=None):
    """mmdet's Bottleneck.forward written out, with an optional after_conv3 module."""
    out = block.relu(block.norm1(block.conv1(x)))
    out = block.relu(block.norm2(block.conv2(out)))
    out = block.norm3(block.conv3(out))
    if after_conv3 is not None:
        out = after_conv3(out)
    identity = x if block.downsample is None else block.downsample(x)
    return F.relu(out + identity)


def _reference(plain, x, after_add=None, after_conv3=None):
    """Plain ResNet outputs with modules inserted at {(stage, block): module}."""
    after_add = after_add or {}
    after_conv3 = after_conv3 or {}
    x = plain.maxpool(plain.relu(plain.norm1(plain.conv1(x))))
    outs = []
    for i, name in enumerate(plain.res_layers):
        for j, block in enumerate(getattr(plain, name)):
            x = _block_ref(block, x, after_conv3.get((i, j)))
            if (i, j) in after_add:
                x = after_add[(i, j)](x)
        outs.append(x)
    return outs


def _assert_outputs(net, ref_outs, x):
    with torch.no_grad():
        outs = net(x)
    assert len(outs) == len(ref_outs)
    for ours, ref in zip(outs, ref_outs):
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_after_add_on_block_minus_2_of_c4_only():
    net, plain = _pair([dict(cfg=_nl(), stages=(False, False, True, False),
                             position='after_add', blocks=(-2, ))])
    names = [n for n, _ in net.named_modules() if n.endswith('.nl')]
    assert names == ['layer3.4.nl']
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = _reference(plain, x, after_add={(2, 4): net.layer3[4].nl})
        plain_outs = plain(x)
    _assert_outputs(net, ref, x)
    # the plugin does change c4 and c5, and nothing before it
    torch.testing.assert_close(ref[1], plain_outs[1])
    assert (ref[2] - plain_outs[2]).abs().max() > 1e-3


def test_after_conv3_on_chosen_blocks_only():
    net, plain = _pair([dict(cfg=_nl(), stages=(False, True, True, False),
                             position='after_conv3', blocks=(0, -1))])
    holders = sorted(n[:-len('.nl')] for n, _ in net.named_modules() if n.endswith('.nl'))
    assert holders == ['layer2.0', 'layer2.3', 'layer3.0', 'layer3.5']
    x = torch.randn(2, 3, 64, 64)
    spots = {(1, 0): net.layer2[0].nl, (1, 3): net.layer2[3].nl,
             (2, 0): net.layer3[0].nl, (2, 5): net.layer3[5].nl}
    with torch.no_grad():
        ref = _reference(plain, x, after_conv3=spots)
    _assert_outputs(net, ref, x)


def test_mixed_positions_keep_list_order_within_a_block():
    """Two after_add plugins on the same block run in the order listed."""
    plugins = [dict(cfg=_nl(), stages=(False, False, True, False), position='after_add',
                    blocks=(-2, )),
               dict(cfg=dict(type='GlobalContextBlock', ratio=4), position='after_add',
                    stages=(False, False, True, False), blocks=(4, ))]
    net, plain = _pair(plugins)
    block = net.layer3[4]
    assert block.after_add_plugin_names == ['nl', 'gc']
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = _reference(plain, x, after_add={(2, 4): lambda t: block.gc(block.nl(t))})
    _assert_outputs(net, ref, x)


def test_without_blocks_equals_mmdet_resnet_plugins():
    plugins = [dict(cfg=dict(type='GlobalContextBlock', ratio=4),
                    stages=(False, True, True, True), position='after_conv3'),
               dict(cfg=_nl(), stages=(False, False, True, False), position='after_conv2')]
    torch.manual_seed(0)
    ours = ContextResNet(plugins=plugins, **SMALL)
    ours.eval()
    for p in ours.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    theirs = ResNet(plugins=plugins, **SMALL)
    theirs.eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), theirs(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_plain_resnet_checkpoint_loads_leaving_only_plugin_keys_missing():
    plugins = [dict(cfg=_nl(), stages=(False, False, True, False), position='after_add',
                    blocks=(-2, ))]
    for depth, spot in ((50, 'layer3.4.nl.'), (101, 'layer3.21.nl.')):
        plain = ResNet(depth=depth, base_channels=8)
        net = ContextResNet(depth=depth, base_channels=8, plugins=plugins)
        plain_keys = set(plain.state_dict())
        ours = set(net.state_dict())
        assert plain_keys <= ours
        assert ours - plain_keys and all(k.startswith(spot) for k in ours - plain_keys)
        missing, unexpected = net.load_state_dict(plain.state_dict(), strict=False)
        assert not unexpected
        assert set(missing) == ours - plain_keys
        for k, v in plain.state_dict().items():
            assert torch.equal(net.state_dict()[k], v)


def test_builds_from_the_mmdet_registry_and_zero_inits_norm3_like_resnet():
    cfg = dict(type='ContextResNet', depth=50, base_channels=8,
               plugins=[dict(cfg=_nl(), stages=(False, False, True, False),
                             position='after_add', blocks=(-2, ))])
    net = MODELS.build(cfg)
    assert isinstance(net, ContextResNet)
    net.init_weights()
    plain = ResNet(depth=50, base_channels=8)
    plain.init_weights()
    for name in ('layer1.0', 'layer3.4', 'layer4.2'):
        block = net.get_submodule(name)
        assert block.norm3.weight.abs().sum() == 0
        assert plain.get_submodule(name).norm3.weight.abs().sum() == 0
        assert block.norm1.weight.eq(1).all()
    # the plugin's own init is applied after the ResNet's Kaiming init
    assert net.layer3[4].nl.conv_out.conv.weight.std() < 0.02
    # zero_init_residual=False: norm3 left at 1
    net = ContextResNet(depth=50, base_channels=8, zero_init_residual=False)
    net.init_weights()
    assert net.layer1[0].norm3.weight.eq(1).all()


@pytest.mark.parametrize('with_cp', [False, True])
def test_with_cp_backward_matches(with_cp):
    plugins = [dict(cfg=_nl(), stages=(False, False, True, False), position='after_add',
                    blocks=(-2, )),
               dict(cfg=dict(type='GlobalContextBlock', ratio=4),
                    stages=(False, True, False, False), position='after_conv3')]
    torch.manual_seed(0)
    ref_net = ContextResNet(plugins=plugins, **SMALL)
    net = ContextResNet(plugins=plugins, with_cp=with_cp, **SMALL)
    net.load_state_dict(ref_net.state_dict())
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for model in (ref_net, net):
        model.train()
        sum(o.square().mean() for o in model(x)).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    nl = [n for n in grads[1] if n.startswith('layer3.4.nl.')]
    assert nl and all(grads[1][n] is not None and grads[1][n].abs().sum() > 0 for n in nl)
    # recomputation reorders float sums (plain mmdet ResNet with_cp: ~3e-6 of the max)
    for n, g in grads[0].items():
        torch.testing.assert_close(grads[1][n], g, rtol=1e-4,
                                   atol=1e-5 * float(g.abs().max()) + 1e-9)


@pytest.mark.parametrize('kwargs, match', [
    (dict(depth=18), r'depth=18 \(a BasicBlock ResNet\)'),
    (dict(depth=34), r'depth=34'),
    (dict(depth=42), r'depth=42'),
    (dict(plugins=[dict(cfg=_nl(), position='after_conv4')]),
     r"position 'after_conv4' is not one of"),
    (dict(plugins=[dict(cfg=_nl(), position='after_add', stages=(False, False, True, False),
                        blocks=(6, ))]),
     r'block index 6 is out of range for stage 2 \(layer3\), which has 6 blocks'),
    (dict(plugins=[dict(cfg=_nl(), position='after_add', blocks=(-4, ))]),
     r'block index -4 is out of range for stage 0 \(layer1\), which has 3 blocks'),
    (dict(plugins=[dict(cfg=_nl(), position='after_add', stages=(False, ) * 4)]),
     r'selects no stage'),
    (dict(plugins=[dict(cfg=_nl(), position='after_add', stages=(True, True))]),
     r'stages has 2 entries, the ResNet has num_stages=4'),
    (dict(plugins=[dict(cfg=_nl(), position='after_add', blocks=())]),
     r'blocks must be a non-empty tuple'),
    (dict(plugins=[dict(cfg=_nl(), position='after_add', blocks=(1, -2),
                        stages=(True, False, False, False))]),
     r'name the same block of stage 0'),
    (dict(plugins=[dict(cfg=_nl(), position='after_add', block=(1, ))]),
     r"unknown keys \['block'\]"),
])
def test_bad_input_raises_a_clear_error(kwargs, match):
    args = dict(depth=50, base_channels=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ContextResNet(**args)


def test_residual_object_context_starts_as_identity_and_learns():
    torch.manual_seed(0)
    block = ResidualObjectContext(16, attention='isa', groups=(2, 2))
    x = torch.randn(2, 16, 6, 8, requires_grad=True)
    y = block(x)
    torch.testing.assert_close(y, x)
    y.square().sum().backward()
    rho = block.attention.local_relation.out
    assert rho.weight.grad.abs().sum() > 0
    assert block.attention.global_relation.out.weight.abs().sum() > 0  # not zeroed
    with pytest.raises(ValueError, match='out_channels=8 must equal in_channels=16'):
        ResidualObjectContext(16, out_channels=8)


@pytest.mark.parametrize('attention, extra, last', [
    ('isa', dict(groups=(2, 2)), 'local_relation'),
    ('isa', dict(groups=(2, 2), order='local_global'), 'global_relation'),
    ('sa', {}, None)])
def test_residual_object_context_is_x_plus_ocp(attention, extra, last):
    torch.manual_seed(0)
    ocp = ObjectContextPooling(16, attention=attention, **extra).eval()
    block = ResidualObjectContext(16, attention=attention, **extra).eval()
    rho = block.attention if last is None else getattr(block.attention, last)
    assert rho.out.weight.abs().sum() == 0
    block.load_state_dict(ocp.state_dict())
    x = torch.randn(2, 16, 6, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + ocp(x))


@pytest.mark.parametrize('plugin', [
    dict(type='NonLocal2dBlock', zero_init=True),
    dict(type='ResidualObjectContext', attention='isa', groups=(2, 2))])
def test_pretrained_init_cfg_loads_plain_weights_and_starts_as_the_plain_net(plugin, tmp_path):
    """init_cfg=Pretrained with a plain ResNet checkpoint (as torchvision://resnet50):
    every ResNet weight loaded, the zero-initialised plugin leaves the outputs unchanged."""
    torch.manual_seed(0)
    plain = ResNet(**SMALL)
    for p in plain.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    torch.save({'state_dict': plain.state_dict()}, tmp_path / 'plain.pth')
    net = MODELS.build(dict(
        type='ContextResNet', **SMALL,
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'plain.pth')),
        plugins=[dict(cfg=plugin, stages=(False, False, True, False), position='after_add',
                      blocks=(-2, ))]))
    net.init_weights()
    for k, v in plain.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    net.eval()
    plain.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(net(x), plain(x)):
            torch.testing.assert_close(a, b)
