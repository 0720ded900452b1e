"""Lee et al. §3.4 / §4.5 from a config: ``BottleneckAttentionInit`` loads a
ResNet checkpoint and initialises the self-attention's dense layers from the
1x1 convs of a bottleneck block; the gsa "+ GC" configs use it."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from det_helpers import det_configs

pytestmark = pytest.mark.usefixtures('mmdet_scope')

GC_CONFIGS = [p for p in det_configs('gsa') if '-gsa' in osp.basename(p)]


def _random_resnet_state(depth=50, **kwargs):
    """State dict of a randomly initialised mmdet ResNet, BN statistics and
    affine random too (so that folding them is visible)."""
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    resnet = MODELS.build(dict(type='ResNet', depth=depth, **kwargs))
    state = resnet.state_dict()
    for key, value in state.items():
        if key.endswith(('bn1.weight', 'bn3.weight', 'running_var')):
            value.uniform_(0.5, 2.0)
        elif key.endswith(('bn1.bias', 'bn3.bias', 'running_mean')):
            value.normal_(0, 0.5)
    return state


@pytest.fixture(scope='module')
def resnet_ckpt(tmp_path_factory):
    """A ResNet-50 at a quarter width (C4 = 256, C5 = 512 channels), saved as
    mmengine saves checkpoints (``state_dict`` and ``meta``)."""
    state = _random_resnet_state(base_channels=16)
    path = str(tmp_path_factory.mktemp('ckpt') / 'resnet50w16.pth')
    torch.save(dict(state_dict=state, meta=dict(epoch=1)), path)
    return path, state


def _neck(neck_type, init_cfg, num_layers=1):
    from mmdet.registry import MODELS
    attention = dict(type='BottleneckSelfAttention', reduction=4, num_heads=4,
                     num_layers=num_layers, init_cfg=init_cfg)
    if neck_type == 'SAFPN':
        return MODELS.build(dict(type='SAFPN', in_channels=[64, 128, 256, 512],
                                 out_channels=32, num_outs=5,
                                 attention_cfg=attention))
    return MODELS.build(dict(type='C4SelfAttentionNeck', in_channels=256,
                             attention_cfg=attention))


def _expected(state, prefix, fold_norm, eps=1e-5):
    """(qkv weight, qkv bias, out weight, out bias) straight from the state
    dict: conv1 / conv3, times g / sqrt(var + eps) of bn1 / bn3 if folded."""
    out = []
    for i in (1, 3):
        w = state[f'{prefix}conv{i}.weight']
        if fold_norm:
            g, beta = state[f'{prefix}bn{i}.weight'], state[f'{prefix}bn{i}.bias']
            mean, var = (state[f'{prefix}bn{i}.running_mean'],
                         state[f'{prefix}bn{i}.running_var'])
            scale = g / torch.sqrt(var + eps)
            out += [w * scale[:, None, None, None], beta - mean * scale]
        else:
            out += [w, torch.zeros(w.shape[0])]
    return out


@pytest.mark.parametrize('fold_norm', [False, True])
@pytest.mark.parametrize('neck_type, prefixes', [
    ('SAFPN', ['layer4.1.']),                 # C5 = 512: c5's non-first blocks
    ('SAFPN', ['layer4.1.', 'layer4.2.']),
    ('C4SelfAttentionNeck', ['layer3.1']),    # C4 = 256 (final dot added)
    ('C4SelfAttentionNeck', ['layer3.1.', 'layer3.4.', 'layer3.5.']),
])
def test_init_cfg_loads_the_blocks(resnet_ckpt, neck_type, prefixes, fold_norm):
    path, state = resnet_ckpt
    prefix = prefixes[0] if len(prefixes) == 1 else prefixes
    neck = _neck(neck_type, dict(type='BottleneckAttentionInit', checkpoint=path,
                                 prefix=prefix, fold_norm=fold_norm),
                 num_layers=len(prefixes))
    att = neck.attention
    # building does not load anything: the normal N(0, 0.01) init
    assert att.layers[0].query.weight.std() < 0.02
    neck.init_weights()
    for layer, p in zip(att.layers, prefixes):
        p = p if p.endswith('.') else p + '.'
        w1, b1, w3, b3 = _expected(state, p, fold_norm)
        for dense in (layer.query, layer.key, layer.value):
            torch.testing.assert_close(dense.weight.data, w1)
            torch.testing.assert_close(dense.bias.data, b1)
        torch.testing.assert_close(layer.out.weight.data, w3)
        torch.testing.assert_close(layer.out.bias.data, b3)
    if neck_type == 'SAFPN':  # the FPN's own convs keep their Xavier init
        assert neck.lateral_convs[0].conv.weight.abs().max() > 0.05


def test_init_cfg_of_a_resnet_plugin(resnet_ckpt):
    """The same init_cfg on a plugin in the backbone (Lee et al. §3.4: a block
    initialised from its own bottleneck's 1x1 convs)."""
    from mmdet.registry import MODELS
    path, state = resnet_ckpt
    backbone = MODELS.build(dict(
        type='ResNet', depth=50, base_channels=16, out_indices=(3, ),
        init_cfg=dict(type='Pretrained', checkpoint=path),
        plugins=[dict(cfg=dict(type='BottleneckSelfAttention', num_heads=4,
                               init_cfg=dict(type='BottleneckAttentionInit',
                                             checkpoint=path, prefix='layer4.1.')),
                      stages=(False, False, False, True), position='after_conv3')]))
    backbone.init_weights()
    block = backbone.layer4[1]
    plugin = getattr(block, block.after_conv3_plugin_names[0])
    assert torch.equal(plugin.layers[0].value.weight, state['layer4.1.conv1.weight'])
    assert torch.equal(plugin.layers[0].value.weight, block.conv1.weight)
    assert torch.equal(plugin.layers[0].out.weight, block.conv3.weight)


def test_missing_block_names_the_key_and_the_checkpoint(resnet_ckpt, tmp_path):
    path, state = resnet_ckpt
    neck = _neck('SAFPN', dict(type='BottleneckAttentionInit', checkpoint=path,
                               prefix='layer4.3.'))
    with pytest.raises(ValueError, match=r"'layer4\.3\.conv1\.weight' is not in "
                       r"checkpoint '.*resnet50w16\.pth'.*layer4\.2\."):
        neck.init_weights()
    # fold_norm needs the BN layers: a checkpoint of bare convs lacks them
    bare = str(tmp_path / 'bare.pth')
    torch.save({k: v for k, v in state.items() if '.bn' not in k}, bare)
    neck = _neck('SAFPN', dict(type='BottleneckAttentionInit', checkpoint=bare,
                               prefix='layer4.1.', fold_norm=True))
    with pytest.raises(ValueError, match=r"'layer4\.1\.bn1\.weight'.*bare\.pth"):
        neck.init_weights()


def test_bad_blocks_and_placements(resnet_ckpt):
    path, _ = resnet_ckpt
    init = dict(type='BottleneckAttentionInit', checkpoint=path)
    # first block of c5: conv1 is 256 -> 128, not 512 -> 128
    with pytest.raises(ValueError, match=r"layer4\.0\..*conv1 has weight shape "
                       r"\(128, 256, 1, 1\)"):
        _neck('SAFPN', dict(init, prefix='layer4.0.')).init_weights()
    # c4 blocks for the C5 module
    with pytest.raises(ValueError, match='conv1 has weight shape'):
        _neck('SAFPN', dict(init, prefix='layer3.1.')).init_weights()
    with pytest.raises(ValueError, match=r'1 prefixes.*2 layers'):
        _neck('SAFPN', dict(init, prefix=['layer4.1.']), num_layers=2).init_weights()
    with pytest.raises(ValueError, match='prefix'):
        _neck('SAFPN', dict(init, prefix='')).init_weights()
    # on the neck instead of the attention module
    from mmdet.registry import MODELS
    neck = MODELS.build(dict(type='C4SelfAttentionNeck', in_channels=256,
                             attention_cfg=dict(type='BottleneckSelfAttention'),
                             init_cfg=dict(init, prefix='layer3.1.')))
    with pytest.raises(ValueError, match='got C4SelfAttentionNeck'):
        neck.init_weights()


def test_checkpoint_is_read_by_init_weights_only(tmp_path):
    """Building a config with the init never touches the checkpoint (the
    config walks build the paper configs without downloading anything)."""
    missing = str(tmp_path / 'no_such.pth')
    neck = _neck('C4SelfAttentionNeck', dict(type='BottleneckAttentionInit',
                                             checkpoint=missing,
                                             prefix='layer3.1.'))
    assert neck(((torch.randn(1, 256, 4, 4)), ))[0].shape == (1, 256, 4, 4)
    with pytest.raises(FileNotFoundError, match='no_such.pth'):
        neck.init_weights()


_STATES = {}


@pytest.mark.parametrize('path', GC_CONFIGS, ids=osp.basename)
def test_gsa_configs_init_from_the_backbone_checkpoint(path, tmp_path):
    """Every "+ GC" config takes its attention init from the checkpoint its
    backbone loads, from blocks that fit the full-size C4 / C5: checked by
    running the init on a checkpoint with the key names and shapes of that
    backbone (mmdet's ResNet, whose names the real checkpoints carry)."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(path)
    att = cfg.model.neck.attention_cfg
    init = att.init_cfg
    assert init.type == 'BottleneckAttentionInit'
    assert init.checkpoint == cfg.model.backbone.init_cfg.checkpoint
    prefixes = [init.prefix] if isinstance(init.prefix, str) else init.prefix
    assert len(prefixes) in (1, att.num_layers)
    if len(prefixes) == 1 and att.num_layers > 1:
        pytest.fail('stacked layers should start from distinct blocks')
    stage = 'layer3.' if cfg.model.neck.type == 'C4SelfAttentionNeck' else 'layer4.'
    assert all(p.startswith(stage) and not p.startswith(stage + '0.')
               for p in prefixes)

    backbone = dict(cfg.model.backbone, init_cfg=None)
    key = repr(sorted(backbone.items()))
    if key not in _STATES:
        torch.manual_seed(0)
        _STATES[key] = MODELS.build(backbone).state_dict()
    state = {k: v for k, v in _STATES[key].items() if k.startswith(tuple(prefixes))}
    ckpt = str(tmp_path / 'backbone.pth')
    torch.save(state, ckpt)
    neck_cfg = cfg.model.neck.copy()
    neck_cfg.attention_cfg.init_cfg.checkpoint = ckpt
    neck = MODELS.build(neck_cfg)
    neck.init_weights()
    for layer, p in zip(neck.attention.layers, prefixes * att.num_layers):
        assert torch.equal(layer.query.weight, state[p + 'conv1.weight'])
        assert torch.equal(layer.out.weight, state[p + 'conv3.weight'])
