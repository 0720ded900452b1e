"""Each fix of mmctx.compat: the break it fixes, and that it is fixed."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

from mmctx import compat


def _mmengine_like_checkpoint(path):
    """What mmengine's Runner.save_checkpoint writes, in small: numpy values
    and a MessageHub HistoryBuffer in ``meta`` beside the weights."""
    buf = HistoryBuffer()
    buf.update(0.5)
    buf.update(0.25)
    ckpt = dict(
        meta=dict(seed=np.int64(1234), epoch=0, iter=2,
                  scale=np.array([1.0, 2.0]), log=buf),
        state_dict=dict(weight=torch.arange(6.).reshape(2, 3)),
    )
    torch.save(ckpt, path)
    return ckpt


def test_fix_is_applied_on_import_and_only_once():
    assert 'safe_checkpoint_loading' in compat.APPLIED
    before = list(compat.APPLIED)
    assert compat.apply_all() == before
    assert compat.APPLIED == before


def test_torch_default_rejects_mmengine_checkpoints(tmp_path):
    """The break: plain torch.load of a checkpoint holding numpy values."""
    path = str(tmp_path / 'ckpt.pth')
    _mmengine_like_checkpoint(path)
    version = tuple(int(v) for v in torch.__version__.split('+')[0]
                    .split('.')[:2])
    if version >= (2, 6):
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path)
    else:  # older torch: full unpickle by default
        torch.load(path)


@pytest.mark.parametrize('load', [
    lambda p: _load_checkpoint(p, map_location='cpu'),
    lambda p: CheckpointLoader.load_checkpoint(p, map_location='cpu'),
])
def test_mmengine_loads_its_own_checkpoints(tmp_path, load):
    path = str(tmp_path / 'ckpt.pth')
    saved = _mmengine_like_checkpoint(path)
    loaded = load(path)
    assert loaded['meta']['seed'] == 1234
    assert isinstance(loaded['meta']['seed'], np.int64)
    np.testing.assert_array_equal(loaded['meta']['scale'], [1.0, 2.0])
    assert loaded['meta']['log'].mean() == pytest.approx(0.375)
    assert torch.equal(loaded['state_dict']['weight'],
                       saved['state_dict']['weight'])


def test_missing_checkpoint_names_the_file(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(missing)


def test_every_scheme_loads_safely(tmp_path):
    """Local files and URLs alike go through mmctx's safe loaders (the fix
    makes loading safer, never wider: a pickle calling anything but the
    types mmengine writes is refused)."""
    from mmctx.utils import checkpoint as safe
    for path in ('/some/file.pth', 'https://example.org/x.pth',
                 'http://example.org/x.pth', 'torchvision://resnet50',
                 'open-mmlab://resnet50_caffe', 'mmcls://x', 's3://b/x.pth'):
        loader = CheckpointLoader._get_checkpoint_loader(path)
        assert loader.__module__ == safe.__name__, path

    class Odd:
        def __reduce__(self):
            return (print, ('unpickled', ))

    path = str(tmp_path / 'odd.pth')
    torch.save(dict(state_dict={}, meta=dict(x=Odd())), path)
    with pytest.raises(pickle.UnpicklingError, match='builtins.print'):
        _load_checkpoint(path)


def test_unknown_plugin_type_is_named():
    """mmcv's build_plugin_layer says 'Cannot find None'; ours names it."""
    from mmengine.registry import init_default_scope
    from mmdet.models.backbones import ResNet
    init_default_scope('mmdet')
    plugins = [dict(cfg=dict(type='NoSuchContextBlock'),
                    stages=(False, False, False, True),
                    position='after_conv3')]
    with pytest.raises(KeyError, match='NoSuchContextBlock'):
        ResNet(depth=50, base_channels=8, plugins=plugins)
    # known plugins still build through the wrapped builder
    plugins[0]['cfg'] = dict(type='ContextBlock', ratio=1. / 4)
    net = ResNet(depth=50, base_channels=8, plugins=plugins)
    assert hasattr(net.layer4[0], 'context_block')


def test_plugin_builder_is_wrapped_everywhere():
    import mmcv.cnn
    import mmcv.cnn.bricks.plugin
    import mmdet.models.backbones.resnet
    import mmseg.models.backbones.resnet
    for module in (mmcv.cnn, mmcv.cnn.bricks.plugin,
                   mmdet.models.backbones.resnet,
                   mmseg.models.backbones.resnet):
        assert getattr(module.build_plugin_layer, '__wrapped_by_mmctx__',
                       False), module.__name__


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='the fix only acts without CUDA')
def test_pytorch_launcher_and_ddp_work_on_cpu(monkeypatch):
    """mmengine's init_dist('pytorch') and MMDistributedDataParallel with
    device_ids=[LOCAL_RANK] - what dist_train.sh runs - on a CPU machine."""
    import torch.distributed as dist
    from mmengine.dist import init_dist
    from mmengine.model.wrappers import MMDistributedDataParallel
    for key, value in dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                           MASTER_ADDR='127.0.0.1',
                           MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(key, value)
    init_dist('pytorch', backend='nccl')  # mmengine's default backend
    try:
        assert dist.get_backend() == 'gloo'
        net = torch.nn.Linear(3, 2)
        ddp = MMDistributedDataParallel(module=net, device_ids=[0],
                                        broadcast_buffers=False)
        ddp(torch.randn(4, 3)).sum().backward()
        assert net.weight.grad is not None
    finally:
        dist.destroy_process_group()
