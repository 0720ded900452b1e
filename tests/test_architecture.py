"""The import rules of docs/architecture.md, read from the code: which mmctx package may import
which (every ``import`` / ``from ... import``, module level or inside a function), that nothing
imports ``tools/`` or the tests, and that test modules have unique basenames (pytest imports
them by basename: two ``test_x.py`` in different folders make one of them uncollectable)."""
import ast
import os
import os.path as osp

import pytest

from tools_helpers import REPO

# Each package (group) -> the other mmctx groups it may import. A group is a subpackage of
# mmctx.models, another subpackage or module of mmctx, or 'mmctx' (the package __init__).
ALLOWED = {
    'mmctx': {'mmctx.compat', 'mmctx.engine', 'mmctx.evaluation', 'mmctx.models', 'mmctx.version'},
    'mmctx.version': set(),
    'mmctx.compat': {'mmctx.utils'},  # the safe checkpoint loaders it registers
    'mmctx.models': {'mmctx.models.layers', 'mmctx.models.backbones', 'mmctx.models.necks',
                     'mmctx.models.decode_heads'},
    'mmctx.models.layers': set(),  # the blocks: nothing of mmctx outside layers/ (checks.py)
    'mmctx.models.backbones': {'mmctx.models.layers'},
    'mmctx.models.necks': {'mmctx.models.layers'},
    'mmctx.models.decode_heads': {'mmctx.models.layers'},
    'mmctx.evaluation': set(),
    'mmctx.engine': set(),
    # register_all_modules imports what it registers (inside the function)
    'mmctx.utils': {'mmctx.compat', 'mmctx.engine', 'mmctx.evaluation', 'mmctx.models'},
    'mmctx.analysis': {'mmctx', 'mmctx.compat', 'mmctx.engine', 'mmctx.evaluation',
                       'mmctx.models', 'mmctx.models.layers', 'mmctx.models.backbones',
                       'mmctx.models.necks', 'mmctx.models.decode_heads', 'mmctx.utils'},
}
# top-level names of what mmctx must never import: the scripts and the tests
NEVER = {'tools', 'tests', 'conftest', 'det_helpers', 'seg_helpers', 'layer_helpers',
         'tools_helpers', 'zoo_helpers', 'ocnet_helpers', 'make_shapes',
         'make_context_shapes'}


def group(module):
    """The group of a dotted module name (None outside mmctx)."""
    parts = module.split('.')
    if parts[0] != 'mmctx':
        return None
    if len(parts) >= 3 and parts[1] == 'models':
        return '.'.join(parts[:3])
    return '.'.join(parts[:2])


def imported_modules(source, module, is_package=False):
    """Absolute names of every module ``source`` (the code of ``module``) imports; a relative
    import is resolved against ``module``'s package."""
    package = module if is_package else module.rsplit('.', 1)[0]
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                if node.module:
                    names.append('.'.join(base + [node.module]))
                else:  # from . import x: x may be a module
                    names += ['.'.join(base + [alias.name]) for alias in node.names]
            else:
                names.append(node.module)
    return names


def violations(source, module, is_package=False):
    """``[(imported module, reason)]`` of the imports of ``module`` that break the rules."""
    own = group(module) if module != 'mmctx' else 'mmctx'
    out = []
    for name in imported_modules(source, module, is_package):
        if name.split('.')[0] in NEVER:
            out.append((name, 'mmctx never imports tools/ or the tests'))
            continue
        target = group(name) if name != 'mmctx' else 'mmctx'
        if target is None or target == own:
            continue
        if target not in ALLOWED.get(own, set()):
            out.append((name, f'{own} may not import {target}'))
    return out


def mmctx_modules():
    for root, _, files in os.walk(osp.join(REPO, 'mmctx')):
        for name in sorted(files):
            if name.endswith('.py'):
                path = osp.join(root, name)
                dotted = osp.relpath(path, REPO)[:-3].replace(os.sep, '.')
                is_package = dotted.endswith('.__init__')
                yield path, dotted[:-len('.__init__')] if is_package else dotted, is_package


def test_every_group_is_known():
    groups = {group(m) if m != 'mmctx' else 'mmctx' for _, m, _ in mmctx_modules()}
    assert groups == set(ALLOWED), 'add the new package to ALLOWED and docs/architecture.md'


def test_mmctx_imports_follow_the_rules():
    found = []
    for path, module, is_package in mmctx_modules():
        with open(path) as f:
            found += [(osp.relpath(path, REPO), *v) for v in violations(f.read(), module, is_package)]
    assert not found, '\n'.join(f'{p}: imports {n} ({why})' for p, n, why in found)


@pytest.mark.parametrize('source, module', [
    ('from ..decode_heads.gcnl_head import GCNLHead', 'mmctx.models.layers.gcnl'),
    ('from mmctx.models.necks import EBFPN', 'mmctx.models.layers.global_context'),
    ('def f():\n    from mmctx.analysis import count_parameters', 'mmctx.models.layers.gcnl'),
    ('from ..analysis import load_model', 'mmctx.models.decode_heads'),
    ('import tools.train', 'mmctx.analysis.inference'),
    ('from det_helpers import CONFIGS', 'mmctx.utils.metafile'),
    ('from mmctx.models.layers import GCNLBlock', 'mmctx.evaluation.metrics.fwiou_metric'),
])
def test_a_forbidden_import_is_caught(source, module):
    assert violations(source, module)
    # and what the rules allow passes
    assert not violations('from ..layers.checks import check_int', 'mmctx.models.necks.ebfpn')
    assert not violations('from .checks import check_int', 'mmctx.models.layers.gcnl')


def test_scripts_do_not_import_each_other():
    """tools/ and demo/ import mmctx, never another script (``tools`` is no package)."""
    found = []
    for top in ('tools', 'demo'):
        for root, _, files in os.walk(osp.join(REPO, top)):
            for name in files:
                if name.endswith('.py'):
                    path = osp.join(root, name)
                    with open(path) as f:
                        names = imported_modules(f.read(), 'script')
                    found += [(path, n) for n in names
                              if n.split('.')[0] in ('tools', 'demo', 'tests')]
    assert not found, found


def test_test_modules_have_unique_basenames():
    seen = {}
    for root, dirs, files in os.walk(osp.join(REPO, 'tests')):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for name in files:
            if name.endswith('.py') and name != 'conftest.py':
                seen.setdefault(name, []).append(osp.relpath(osp.join(root, name), REPO))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, clashes


def test_architecture_doc_names_every_package():
    with open(osp.join(REPO, 'docs', 'architecture.md')) as f:
        doc = f.read()
    for name in ALLOWED:
        if name not in ('mmctx', 'mmctx.version'):
            assert name.replace('mmctx.', '', 1) in doc, name
