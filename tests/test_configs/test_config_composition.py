"""How the configs under configs/ are composed, which the row tests
(tests/test_configs/test_<paper>.py, each config against its metafile row) do
not see: a leaf combines flat fragments (``_base_/models``, ``_base_/datasets``,
``_base_/schedules``) as mmseg's configs do, a block is written in one file, and
chains stay short.

The files are read as text (``_base_`` with :mod:`ast`), so these checks take no
config loading.
"""
import ast
import glob
import io
import os.path as osp
import re
import tokenize

import pytest

from mmctx.utils.metafile import REPO

CONFIGS = osp.join(REPO, 'configs')
#: the longest chain of project files (the config itself counted) per paper
#: folder; mmdet:: / mmseg:: bases are not counted. gsa's R-101 SGD leaves sit
#: on their Adam-then-SGD leaf, on the R-101 base, on the R-50 C4 base.
MAX_DEPTH = {'gsa': 4}
DEFAULT_MAX_DEPTH = 3
#: blocks written out once: the model type and the one file (relative to
#: configs/) that writes it; every config that uses one inherits it
WRITTEN_ONCE = {
    'EBFPN': 'gcnl/_base_/models/ebfpn.py',
    'BFP': 'gcnl/_base_/models/bfpn.py',
    'HRNet': 'ocnet/_base_/models/baseoc-isa_hr48.py',
}
FRAGMENT_KINDS = ('models', 'datasets', 'schedules')
#: top-level names a fragment of each kind may assign (all others belong to
#: another kind, so two fragments of different kinds never share a key and a
#: leaf can list them side by side in its _base_)
MODEL_KEYS = {'model', 'custom_imports', 'norm_cfg', 'hr_channels', 'ebfpn_neck', 'bfpn_neck'}
SCHEDULE_KEYS = {'optimizer', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'val_cfg',
                 'test_cfg', 'default_hooks', 'custom_hooks'}


def config_files(root=CONFIGS):
    return sorted(glob.glob(osp.join(root, '**', '*.py'), recursive=True))


def project_bases(path):
    """The project files ``path`` inherits directly (mmdet:: / mmseg:: left out)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            bases = ast.literal_eval(node.value)
            bases = [bases] if isinstance(bases, str) else bases
            return [osp.normpath(osp.join(osp.dirname(path), b)) for b in bases
                    if '::' not in b]
    return []


def depth(path):
    """Project files in the longest inheritance chain from ``path``, itself counted."""
    return 1 + max((depth(b) for b in project_bases(path)), default=0)


def code_without_comments(path):
    with open(path) as f:
        source = f.read()
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            lines[row - 1] = lines[row - 1][:col]
    return '\n'.join(lines)


def files_writing_type(type_name, root=CONFIGS):
    """Configs (relative to ``root``) whose code (comments left out) writes
    ``type='<type_name>'`` or ``'type': '<type_name>'``."""
    pattern = re.compile(r"""\btype['"]?\s*[=:]\s*['"]%s['"]""" % re.escape(type_name))
    return sorted(osp.relpath(p, root) for p in config_files(root)
                  if pattern.search(code_without_comments(p)))


def assigned_names(path):
    with open(path) as f:
        tree = ast.parse(f.read())
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)} - {'_base_'}


def fragments(kind=None):
    kinds = (kind, ) if kind else FRAGMENT_KINDS
    return sorted(p for k in kinds
                  for p in glob.glob(osp.join(CONFIGS, '*', '_base_', k, '*.py')))


def test_depth_is_measured_over_project_files():
    # the helpers themselves: a leaf on a fragment on mmseg is 2 deep
    leaf = osp.join(CONFIGS, 'ocnet', 'baseoc-isa_hr48_4xb4-150k_ade20k-520x520.py')
    assert osp.join(CONFIGS, 'ocnet', '_base_', 'models', 'baseoc-isa_hr48.py') \
        in project_bases(leaf)
    assert depth(leaf) == 2
    assert depth(osp.join(CONFIGS, 'ocnet', 'aspoc-isa_hr48_4xb4-150k_ade20k-520x520.py')) == 3


@pytest.mark.parametrize('path', config_files(), ids=lambda p: osp.relpath(p, CONFIGS))
def test_no_chain_is_deeper_than_its_limit(path):
    paper = osp.relpath(path, CONFIGS).split(osp.sep)[0]
    limit = MAX_DEPTH.get(paper, DEFAULT_MAX_DEPTH)
    assert depth(path) <= limit, f'{path}: {depth(path)} project files deep (limit {limit})'


def test_the_depth_limits_are_reached():
    # a limit above what the configs need would let a chain grow unnoticed
    deepest = {}
    for path in config_files():
        paper = osp.relpath(path, CONFIGS).split(osp.sep)[0]
        deepest[paper] = max(deepest.get(paper, 0), depth(path))
    assert max(deepest.values()) == max(DEFAULT_MAX_DEPTH, *MAX_DEPTH.values())
    for paper, limit in MAX_DEPTH.items():
        assert deepest[paper] == limit, paper


@pytest.mark.parametrize('path', fragments(), ids=lambda p: osp.relpath(p, CONFIGS))
def test_fragments_are_flat(path):
    """A fragment inherits from mmdet / mmseg only, so a leaf on fragments is 2 deep."""
    assert project_bases(path) == []


@pytest.mark.parametrize('type_name', sorted(WRITTEN_ONCE))
def test_block_is_written_in_one_file(type_name):
    assert files_writing_type(type_name) == [WRITTEN_ONCE[type_name]]


def test_type_scan_skips_comments_and_finds_both_spellings(tmp_path):
    (tmp_path / 'a.py').write_text("# model = dict(type='HRNet')\nx = 1  # type='HRNet'\n")
    (tmp_path / 'b.py').write_text("backbone = {'type': 'HRNet'}\n")
    (tmp_path / 'c.py').write_text(
        "backbone = dict(\n    type = \"HRNet\")\nneck = dict(type='HRNetX')\n")
    assert files_writing_type('HRNet', root=str(tmp_path)) == ['b.py', 'c.py']


@pytest.mark.parametrize('kind', FRAGMENT_KINDS)
def test_fragments_of_different_kinds_hold_disjoint_keys(kind):
    paths = fragments(kind)
    assert paths, kind
    for path in paths:
        names = assigned_names(path)
        if kind == 'models':
            assert names <= MODEL_KEYS, (path, names - MODEL_KEYS)
        elif kind == 'schedules':
            assert names <= SCHEDULE_KEYS, (path, names - SCHEDULE_KEYS)
        else:
            assert not names & (MODEL_KEYS | SCHEDULE_KEYS), (path, names & (MODEL_KEYS
                                                                           | SCHEDULE_KEYS))


def test_every_base_file_is_used():
    used = {b for path in config_files() for b in project_bases(path)}
    bases = [p for p in config_files() if f'{osp.sep}_base_{osp.sep}' in p]
    unused = sorted(osp.relpath(p, CONFIGS) for p in bases if p not in used)
    # the shapes data set bases and the context benchmark fragment are read by
    # tools and tests (mmctx.analysis.context_benchmark), not by a config
    assert all(p.startswith(('_base_/datasets/shapes_', 'context_benchmark/_base_/'))
               for p in unused), unused
