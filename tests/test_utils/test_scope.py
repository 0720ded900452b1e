"""mmctx.utils.scope.task_scope: the one place a config's ``default_scope`` is read."""
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config
from tools_helpers import REPO

from mmctx.utils import SCOPES, task_scope


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
def test_the_two_task_libraries_are_returned(scope):
    assert task_scope(Config(dict(default_scope=scope, model=dict()))) == scope
    assert task_scope(dict(default_scope=scope)) == scope
    assert SCOPES == ('mmdet', 'mmseg')


@pytest.mark.parametrize('cfg,named', [
    (dict(model=dict()), r'got None \(the config has none\)'),
    (dict(default_scope=None), r'got None \(the config has none\)'),
    (dict(default_scope='mmcls'), r"got 'mmcls': "),
    (dict(default_scope='MMSeg'), r"got 'MMSeg': "),
])
def test_a_missing_or_other_scope_is_refused_naming_the_value(cfg, named):
    with pytest.raises(ValueError, match=r'default_scope must be mmdet or mmseg, ' + named):
        task_scope(Config(cfg))


def test_the_readers_apply_the_rule():
    """A config without default_scope is refused, not read as mmdet, by every reader."""
    from mmctx.analysis.training_cost import build_model
    from mmctx.utils.dataset_check import check_config_datasets
    cfg = Config(dict(model=dict(type='FCNHead')))
    for call in (lambda: build_model(cfg), lambda: check_config_datasets(cfg)):
        with pytest.raises(ValueError, match='default_scope must be mmdet or mmseg, got None'):
            call()


# how a reader would spell the key: cfg.get('default_scope'), cfg['default_scope'],
# cfg.default_scope (init_default_scope and help texts do not count)
READ = re.compile(r"""get\(\s*['"]default_scope['"]|\[\s*['"]default_scope['"]\s*\]"""
                  r"""|\.default_scope\b""")


def test_no_other_module_reads_default_scope():
    found = []
    for top in ('mmctx', 'tools', 'demo'):
        for root, _, files in os.walk(osp.join(REPO, top)):
            for name in files:
                path = osp.join(root, name)
                if not name.endswith('.py') or path.endswith(osp.join('utils', 'scope.py')):
                    continue
                with open(path, encoding='utf-8') as f:
                    for i, line in enumerate(f, 1):
                        if READ.search(line):
                            found.append(f'{osp.relpath(path, REPO)}:{i}: {line.strip()}')
    assert not found, found
