"""Safe checkpoint loading (mmctx.utils.checkpoint) through every scheme of
mmengine's CheckpointLoader: checkpoints mmengine writes and model-zoo-shaped
ones load; a pickle that calls anything else never runs, locally or served
over http from 127.0.0.1; full unpickling only on request."""
import functools
import http.server
import io
import json
import pickle
import threading
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mmctx  # noqa: F401  (registers the safe loaders)
from mmctx.utils import checkpoint as safe
from mmctx.utils.checkpoint import UNSAFE_LOAD_ENV, UnsafeCheckpointError


class Payload:
    """Unpickling this calls ``builtins.exec``, which writes ``marker``: the
    shape of an ``os.system`` payload, harmless."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").write("payload ran")', ))


def hostile_checkpoint(path, marker, legacy=False):
    """A valid-looking checkpoint with the payload hidden in ``meta``
    (``legacy``: torch's pre-1.6 file format)."""
    torch.save(dict(meta=dict(epoch=1, iter=10, note=Payload(marker)),
                    state_dict=OrderedDict(weight=torch.ones(2, 2))),
               str(path), _use_new_zipfile_serialization=not legacy)
    return str(path)


def model_zoo_checkpoint(path, legacy=False):
    """Shaped like an mmdet / mmseg model-zoo file: an OrderedDict state dict
    with ``_metadata``, ``meta`` with strings, tuples and numpy values (as
    mmcv / mmengine runners wrote them), an SGD optimizer state."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.randn(2, 3, 5, 5)).sum().backward()
    opt.step()
    buf = HistoryBuffer()
    for v in (0.5, 0.25):
        buf.update(v)
    ckpt = dict(
        meta=dict(
            mmdet_version='3.3.0', CLASSES=('circle', 'square'),
            dataset_meta=dict(classes=('circle', 'square'),
                              palette=[(220, 20, 60), (119, 11, 32)]),
            config='model = dict(type="RetinaNet")', epoch=12, iter=7330,
            seed=np.int64(1234), best_score=np.float64(0.371),
            scale=np.array([1.0, 2.0], dtype=np.float32),
            ids=np.arange(3), time='20230101_000000', log=buf,
            hook_msgs=dict(last_ckpt='work_dirs/x/epoch_12.pth')),
        state_dict=net.state_dict(),
        optimizer=opt.state_dict(),
    )
    # legacy: the pre-zip format of torch < 1.6 (old torchvision / model-zoo
    # files)
    torch.save(ckpt, str(path), _use_new_zipfile_serialization=not legacy)
    return ckpt


def check_model_zoo(loaded, saved):
    assert loaded['meta']['seed'] == 1234
    assert isinstance(loaded['meta']['seed'], np.int64)
    assert loaded['meta']['best_score'] == pytest.approx(0.371)
    np.testing.assert_array_equal(loaded['meta']['scale'], [1.0, 2.0])
    assert loaded['meta']['scale'].dtype == np.float32
    np.testing.assert_array_equal(loaded['meta']['ids'], [0, 1, 2])
    assert loaded['meta']['log'].mean() == pytest.approx(0.375)
    assert loaded['meta']['CLASSES'] == ('circle', 'square')
    assert isinstance(loaded['state_dict'], OrderedDict)
    assert loaded['state_dict']._metadata == saved['state_dict']._metadata
    for key, value in saved['state_dict'].items():
        assert torch.equal(loaded['state_dict'][key], value), key
    mom = saved['optimizer']['state'][0]['momentum_buffer']
    assert torch.equal(loaded['optimizer']['state'][0]['momentum_buffer'], mom)


@pytest.fixture(autouse=True)
def safe_by_default(monkeypatch):
    """Every test starts with full unpickling off, whatever the environment
    says, and gets the environment back afterwards."""
    monkeypatch.setenv(UNSAFE_LOAD_ENV, '0')


@pytest.fixture
def served(tmp_path, monkeypatch):
    """(directory, base URL) of an http server on 127.0.0.1 serving the
    directory from a daemon thread; it stops at teardown, or by itself after
    120 s. torch's hub cache goes to tmp_path."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    root = tmp_path / 'served'
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever,
                              kwargs=dict(poll_interval=0.1), daemon=True)
    thread.start()
    stop = threading.Timer(120, server.shutdown)
    stop.daemon = True
    stop.start()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    try:
        yield root, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        stop.cancel()
        server.shutdown()
        server.server_close()
        thread.join(10)


def assert_refused(load, marker, name='builtins.exec'):
    with pytest.raises(UnsafeCheckpointError) as info:
        load()
    message = str(info.value)
    assert name in message
    assert '--unsafe-load' in message and UNSAFE_LOAD_ENV in message
    assert not marker.exists(), 'the payload ran'
    return message


# ---------------------------------------------------------------- registration


def test_every_scheme_has_a_safe_loader():
    for prefixes, loader in safe.SAFE_SCHEMES.items():
        for prefix in (prefixes if isinstance(prefixes, tuple) else (prefixes, )):
            assert CheckpointLoader._schemes[prefix] is loader, prefix
    for path in ('/a/b.pth', 'b.pth', 'https://x/y.pth', 'http://x/y.pth',
                 'torchvision://resnet50', 'modelzoo://resnet50',
                 'open-mmlab://x', 'openmmlab://x', 'mmcls://x', 'pavi://x',
                 's3://b/x.pth', 'open-mmlab:s3://b/x.pth', 'petrel://x'):
        loader = CheckpointLoader._get_checkpoint_loader(path)
        assert loader.__module__ == safe.__name__, path
    # mmengine names the backend from the loader's name in its log line
    assert all(f.__name__.startswith('load_from_')
               for f in safe.SAFE_SCHEMES.values())


# ---------------------------------------------------------------- local files


@pytest.mark.parametrize('legacy', [False, True])
def test_hostile_local_checkpoint_is_refused(tmp_path, legacy):
    marker = tmp_path / 'marker'
    path = hostile_checkpoint(tmp_path / 'evil.pth', marker, legacy)
    message = assert_refused(lambda: _load_checkpoint(path), marker)
    assert 'evil.pth' in message
    # the model-level API refuses it too
    assert_refused(lambda: CheckpointLoader.load_checkpoint(path), marker)


def test_os_system_payload_is_named(tmp_path):
    class System:
        def __reduce__(self):
            import os
            return (os.system, ('true', ))

    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(x=System())), path)
    with pytest.raises(UnsafeCheckpointError, match=r"'posix\.system'"):
        _load_checkpoint(path)


@pytest.mark.parametrize('target', [
    (HistoryBuffer, '__init__'), (HistoryBuffer, '_set_default_statistics'),
    (np.ndarray, 'tofile'), (torch.Tensor, 'new_empty')])
def test_getattr_only_reaches_history_buffer_methods(tmp_path, target):
    """HistoryBuffer pickles getattr(HistoryBuffer, 'mean'); no other
    getattr is answered."""

    class Reach:
        def __reduce__(self):
            return (getattr, target)

    path = str(tmp_path / 'reach.pth')
    torch.save(dict(meta=dict(x=Reach())), path)
    with pytest.raises(UnsafeCheckpointError, match=r'getattr\(.*'
                       f'{target[1]}.* is refused'):
        _load_checkpoint(path)


@pytest.mark.parametrize('legacy', [False, True])
def test_model_zoo_shaped_checkpoint_loads(tmp_path, legacy):
    path = tmp_path / 'zoo.pth'
    saved = model_zoo_checkpoint(path, legacy=legacy)
    assert zipfile.is_zipfile(path) != legacy
    check_model_zoo(_load_checkpoint(str(path), map_location='cpu'), saved)


NP1, NP2 = b'numpy.core.multiarray', b'numpy._core.multiarray'


def _as_other_numpy_pickle(src, dst):
    """Rewrite a torch zip checkpoint as the other numpy major version
    writes it: the array / scalar reconstructors under
    ``numpy.core.multiarray`` (numpy 1) or ``numpy._core.multiarray``
    (numpy 2)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith('data.pkl'):
                old, new = (NP2, NP1) if NP2 in data else (NP1, NP2)
                assert old in data
                data = pkl = data.replace(old, new)
            zout.writestr(item.filename, data)
    return pkl


def test_checkpoint_written_by_the_other_numpy_loads(tmp_path):
    saved = model_zoo_checkpoint(tmp_path / 'zoo.pth')
    with zipfile.ZipFile(tmp_path / 'zoo.pth') as z:
        written = z.read([n for n in z.namelist() if n.endswith('data.pkl')][0])
    other = tmp_path / 'zoo_other.pth'
    pkl = _as_other_numpy_pickle(tmp_path / 'zoo.pth', other)
    assert (NP1 in written) != (NP1 in pkl) and (NP2 in written) != (NP2 in pkl)
    check_model_zoo(_load_checkpoint(str(other)), saved)


def test_allow_list_is_not_added_for_the_whole_process(tmp_path):
    """The allow-list acts around mmctx's loads only: torch.load itself keeps
    refusing numpy values, and torch's global allow-list is unchanged."""
    path = tmp_path / 'zoo.pth'
    model_zoo_checkpoint(path)
    # torch keeps the allow-list in a set: compare as sets, its order may change
    before = set(torch.serialization.get_safe_globals())
    _load_checkpoint(str(path))
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(pickle.UnpicklingError):
        torch.load(str(path), weights_only=True)
    # and what the user allowed process-wide stays allowed after a load
    torch.serialization.add_safe_globals([np.ndarray])
    try:
        _load_checkpoint(str(path))
        assert np.ndarray in torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def test_user_allow_list_is_honoured(tmp_path):
    """The third way out the message names: allow one global."""
    path = str(tmp_path / 'odd.pth')
    torch.save(dict(state_dict={}, meta=dict(d=frozenset({1, 2}))), path)
    with pytest.raises(UnsafeCheckpointError, match='builtins.frozenset'):
        _load_checkpoint(path)
    with torch.serialization.safe_globals([frozenset]):
        assert _load_checkpoint(path)['meta']['d'] == frozenset({1, 2})


def test_opt_in_unpickles_fully(tmp_path, monkeypatch):
    marker = tmp_path / 'marker'
    path = hostile_checkpoint(tmp_path / 'evil.pth', marker)
    monkeypatch.setenv(UNSAFE_LOAD_ENV, '1')
    ckpt = _load_checkpoint(path)
    assert marker.read_text() == 'payload ran'
    assert torch.equal(ckpt['state_dict']['weight'], torch.ones(2, 2))


@pytest.mark.parametrize('value', ['maybe', '2'])
def test_malformed_opt_in_is_named(tmp_path, monkeypatch, value):
    path = str(tmp_path / 'w.pth')
    torch.save(dict(state_dict={}), path)
    monkeypatch.setenv(UNSAFE_LOAD_ENV, value)
    with pytest.raises(ValueError, match=f'{UNSAFE_LOAD_ENV}=.{value}'):
        _load_checkpoint(path)


def test_truncated_file_is_not_reported_as_hostile(tmp_path):
    path = tmp_path / 'zoo.pth'
    model_zoo_checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(Exception) as info:
        _load_checkpoint(str(path))
    assert not isinstance(info.value, UnsafeCheckpointError)


# ---------------------------------------------------------------- remote schemes


def test_http_checkpoints(tmp_path, served):
    root, url = served
    marker = tmp_path / 'marker'
    hostile_checkpoint(root / 'evil.pth', marker)
    saved = model_zoo_checkpoint(root / 'zoo.pth')
    # the server works: a model-zoo checkpoint downloads and loads
    check_model_zoo(_load_checkpoint(f'{url}/zoo.pth'), saved)
    message = assert_refused(lambda: _load_checkpoint(f'{url}/evil.pth'),
                             marker)
    assert f'{url}/evil.pth' in message
    # once downloaded it is in torch's hub cache: refused from there too
    assert_refused(lambda: _load_checkpoint(f'{url}/evil.pth'), marker)


def test_mmengine_http_loader_runs_the_payload(tmp_path, served):
    """The break (kept as a record): mmengine's own http loader, which
    CheckpointLoader used before, fully unpickles the download."""
    import mmengine.runner.checkpoint as ckpt_mod
    root, url = served
    marker = tmp_path / 'marker'
    hostile_checkpoint(root / 'evil_mm.pth', marker)
    ckpt_mod.load_from_http(f'{url}/evil_mm.pth')
    assert marker.read_text() == 'payload ran'


def test_http_opt_in(tmp_path, served, monkeypatch):
    root, url = served
    marker = tmp_path / 'marker'
    hostile_checkpoint(root / 'evil2.pth', marker)
    monkeypatch.setenv(UNSAFE_LOAD_ENV, 'true')
    _load_checkpoint(f'{url}/evil2.pth')
    assert marker.exists()


def test_torchvision_and_mmcls_schemes(tmp_path, served, monkeypatch):
    import mmengine.runner.checkpoint as ckpt_mod
    root, url = served
    marker = tmp_path / 'marker'
    hostile_checkpoint(root / 'evil_tv.pth', marker)
    saved = model_zoo_checkpoint(root / 'resnet_tv.pth')
    monkeypatch.setattr(ckpt_mod, 'get_torchvision_models', lambda: dict(
        evilnet=f'{url}/evil_tv.pth', resnet50=f'{url}/resnet_tv.pth'))
    check_model_zoo(_load_checkpoint('torchvision://resnet50'), saved)
    assert_refused(lambda: _load_checkpoint('torchvision://evilnet'), marker)
    assert_refused(lambda: _load_checkpoint('modelzoo://evilnet'), marker)
    with pytest.raises(KeyError, match='torchvision://resnet51'):
        _load_checkpoint('torchvision://resnet51')

    hostile_checkpoint(root / 'evil_cls.pth', marker)
    monkeypatch.setattr(ckpt_mod, 'get_mmcls_models',
                        lambda: dict(evilcls=f'{url}/evil_cls.pth'))
    assert_refused(lambda: _load_checkpoint('mmcls://evilcls'), marker)


def test_open_mmlab_scheme(tmp_path, served, monkeypatch):
    """open-mmlab:// names from the user's MMENGINE_HOME/open_mmlab.json:
    a URL (http) and a file under the mmengine home."""
    root, url = served
    home = tmp_path / 'mmengine_home'
    home.mkdir()
    monkeypatch.setenv('MMENGINE_HOME', str(home))
    marker = tmp_path / 'marker'
    hostile_checkpoint(root / 'evil_om.pth', marker)
    hostile_checkpoint(home / 'evil_local.pth', marker)
    saved = model_zoo_checkpoint(home / 'zoo_local.pth')
    (home / 'open_mmlab.json').write_text(json.dumps(dict(
        evil_http=f'{url}/evil_om.pth', evil_local='evil_local.pth',
        zoo_local='zoo_local.pth')))
    check_model_zoo(_load_checkpoint('open-mmlab://zoo_local'), saved)
    assert_refused(lambda: _load_checkpoint('open-mmlab://evil_http'), marker)
    assert_refused(lambda: _load_checkpoint('openmmlab://evil_local'), marker)


# ---------------------------------------------------------------- model-level callers


def test_pretrained_init_cfg_is_safe(tmp_path):
    from mmengine.model import BaseModule

    class Net(BaseModule):
        def __init__(self, init_cfg):
            super().__init__(init_cfg)
            self.weight = torch.nn.Parameter(torch.zeros(2, 2))

    marker = tmp_path / 'marker'
    path = hostile_checkpoint(tmp_path / 'evil.pth', marker)
    net = Net(dict(type='Pretrained', checkpoint=path))
    assert_refused(net.init_weights, marker)
    # a plain state dict loads through the same init
    good = str(tmp_path / 'good.pth')
    torch.save(dict(state_dict=dict(weight=torch.full((2, 2), 3.))), good)
    net = Net(dict(type='Pretrained', checkpoint=good))
    net.init_weights()
    assert torch.equal(net.weight.data, torch.full((2, 2), 3.))


def test_bottleneck_attention_init_is_safe(tmp_path):
    from mmctx.models.layers.bottleneck_attention import _checkpoint_state_dict
    marker = tmp_path / 'marker'
    path = hostile_checkpoint(tmp_path / 'evil.pth', marker)
    assert_refused(lambda: _checkpoint_state_dict(path, 'cpu'), marker)


def test_io_buffers_load_safely(tmp_path):
    marker = tmp_path / 'marker'
    buffer = io.BytesIO()
    torch.save(dict(x=Payload(marker)), buffer)
    buffer.seek(0)
    with pytest.raises(UnsafeCheckpointError, match='<file object>'):
        safe.load_torch_file(buffer)
    assert not marker.exists()
