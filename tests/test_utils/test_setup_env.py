"""mmctx.utils.register_all_modules: after the call every class that mmctx's modules export is
in its registry, in a fresh interpreter (no earlier test may have registered anything)."""
import json
import subprocess
import sys

import pytest

from tools_helpers import REPO

# The package of each kind of module and the registry its classes go to.
PACKAGES = {
    'mmctx.models.layers': 'mmengine.registry:MODELS',
    'mmctx.models.backbones': 'mmdet.registry:MODELS',
    'mmctx.models.necks': 'mmdet.registry:MODELS',
    'mmctx.models.decode_heads': 'mmseg.registry:MODELS',
    'mmctx.evaluation.metrics': 'mmseg.registry:METRICS',
    'mmctx.engine.hooks': 'mmengine.registry:HOOKS',
}

# Exported classes that are no module of a registry, each for a reason. A class that leaves
# this list must be found in its registry; a new unregistered class must be added with its reason.
UNREGISTERED = {
    'SelfAttentionLayer',  # one layer of BottleneckSelfAttention, built by it
    'BottleneckAttentionInit',  # a weight initialiser: mmengine's WEIGHT_INITIALIZERS (below)
    'ContextBottleneck',  # the block ContextResNet builds for its stages
}

SCRIPT = r'''
import importlib, inspect, json, pkgutil, sys
from mmctx.utils import register_all_modules
register_all_modules()
packages = json.loads(sys.argv[1])
found, missing, exported = [], [], []
for package, where in packages.items():
    registry = getattr(importlib.import_module(where.split(':')[0]), where.split(':')[1])
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f'{package}.{info.name}')
        for name in getattr(module, '__all__', []):
            obj = getattr(module, name)
            if not inspect.isclass(obj):
                continue
            exported.append(name)
            (found if registry.get(name) is obj else missing).append(f'{package}:{name}')
from mmengine.registry import WEIGHT_INITIALIZERS
print(json.dumps(dict(found=found, missing=missing, exported=exported,
                      init=WEIGHT_INITIALIZERS.get('BottleneckAttentionInit') is not None)))
'''


def _run(script, *args):
    proc = subprocess.run([sys.executable, '-c', script, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()


@pytest.fixture(scope='module')
def lookup():
    return json.loads(_run(SCRIPT, json.dumps(PACKAGES))[-1])


def test_every_exported_class_is_in_its_registry(lookup):
    missing = {entry.split(':')[1] for entry in lookup['missing']}
    assert missing == UNREGISTERED, sorted(missing ^ UNREGISTERED)
    assert lookup['init']  # BottleneckAttentionInit, in mmengine's WEIGHT_INITIALIZERS
    # every package contributes, and the named examples are there
    for package in PACKAGES:
        assert any(entry.startswith(package + ':') for entry in lookup['found']), package
    for name in ('mmctx.models.decode_heads:BaseOCHead', 'mmctx.models.layers:GCNLBlock',
                 'mmctx.models.necks:EBFPN', 'mmctx.evaluation.metrics:FWIoUMetric',
                 'mmctx.engine.hooks:AdamToSGDHook', 'mmctx.models.backbones:ContextResNet'):
        assert name in lookup['found'], name


def test_init_default_scope():
    lines = _run('from mmengine.registry import DefaultScope\n'
               'from mmctx.utils import register_all_modules\n'
               'register_all_modules()\n'
               'print(DefaultScope.get_current_instance())\n'
               "register_all_modules(init_default_scope='mmseg')\n"
               'print(DefaultScope.get_current_instance().scope_name)')
    assert lines[-2:] == ['None', 'mmseg']  # no scope set unless asked
    with pytest.raises(ValueError, match='init_default_scope'):
        from mmctx.utils import register_all_modules
        register_all_modules(init_default_scope=True)  # mmctx has no scope of its own
