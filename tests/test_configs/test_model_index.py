"""model-index.yml (mim's entry point to the model zoo) imports one metafile
per paper folder; every paper config is in exactly one metafile, and every
metafile entry names a config that exists."""
import glob
import os.path as osp
from collections import Counter

import yaml

from mmctx.utils.metafile import REPO, load_metafile

#: configs that reproduce no paper: the demo detector and the context benchmark
NOT_PAPER = ('configs/demo/', 'configs/context_benchmark/')


def _index():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        return yaml.safe_load(f)['Import']


def test_model_index_imports_every_metafile_once():
    imports = _index()
    assert len(imports) == len(set(imports))
    found = sorted(osp.relpath(p, REPO)
                   for p in glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml')))
    assert sorted(imports) == found
    papers = sorted(osp.basename(d) for d in glob.glob(osp.join(REPO, 'configs', '*'))
                    if osp.isdir(d) and not d.endswith('_base_')
                    and not any(osp.relpath(d, REPO) + '/' == n for n in NOT_PAPER))
    assert [osp.basename(osp.dirname(p)) for p in found] == papers


def test_every_config_is_in_exactly_one_metafile():
    named = Counter()
    for path in _index():
        paper = osp.basename(osp.dirname(path))
        for model in load_metafile(paper)['Models']:
            named[osp.normpath(model['Config'])] += 1
            assert osp.isfile(osp.join(REPO, model['Config'])), \
                f'{path}: {model["Name"]} names {model["Config"]}, which does not exist'
    configs = [osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))]
    configs = [c for c in configs if not c.startswith(NOT_PAPER)]
    missing = sorted(c for c in configs if named[c] == 0)
    twice = sorted(c for c, n in named.items() if n > 1)
    assert not missing, f'configs in no metafile: {missing}'
    assert not twice, f'configs in more than one metafile entry: {twice}'
    assert sum(named.values()) == len(configs)
