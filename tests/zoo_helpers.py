"""Reading the model-zoo tables of ``configs/<paper>/README.md`` in tests.

Every table row that links a config has our measured parameter count in its
"Our params" (or "Params (M, ours)") column, in M, optionally followed by
``M`` and the overhead ``(+x.xx)`` / ``(-x.xx)``; the tests compare it with
the count of the built model, so the README stays true. The checks every paper's
metafile test makes (configs == entries, paper rows, README rendered) are here too.
"""
import glob
import os.path as osp
import re
from collections import Counter

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def readme_rows(paper, section):
    """``[(config file name, cells)]`` of the table rows that link a config in
    the ``## <section>...`` section of ``configs/<paper>/README.md``; the cells
    are keyed by their column header."""
    with open(osp.join(CONFIGS, paper, 'README.md')) as f:
        text = f.read()
    start = text.index('\n## ' + section)
    end = text.find('\n## ', start + 1)
    rows, header = [], None
    for line in text[start:end if end > 0 else None].splitlines():
        cells = [c.strip() for c in line.split('|')[1:-1]]
        link = re.search(r'\]\((?:\./)?([^)/]+\.py)\)', line)
        if not cells:
            header = None
        elif link:
            assert header and len(header) == len(cells), f'row without its header: {line}'
            rows.append((link.group(1), dict(zip(header, cells))))
        elif not set(''.join(cells)) <= set('-: '):
            header = cells
    return rows


def our_params_cell(cells):
    """The cell of the "Our params" / "Params (M, ours)" column."""
    ours = [k for k in cells if re.search(r'\bours?\b', k, re.I) and 'param' in k.lower()]
    assert len(ours) == 1, f'no single "our params" column in {list(cells)}'
    return cells[ours[0]]


def _our_params(cells):
    """(params, overhead or None) of a row's "our params" cell: '46.50 M (+2.10)'."""
    cell = our_params_cell(cells)
    m = re.fullmatch(r'([0-9.]+)(?: M)?(?: \(([+-][0-9.]+)\))?', cell)
    assert m, f'our params {cell!r} is not "<params>[ M][ (+/-<overhead>)]"'
    return float(m.group(1)), m.group(2) and float(m.group(2))


def readme_params(paper, section):
    """{config file name: our params in M} of the section's table rows."""
    return {name: _our_params(cells)[0] for name, cells in readme_rows(paper, section)}


def readme_overheads(paper, section):
    """{config file name: overhead over its baseline in M} where the row gives one."""
    out = {}
    for name, cells in readme_rows(paper, section):
        overhead = _our_params(cells)[1]
        if overhead is not None:
            out[name] = overhead
    return out


def check_configs_are_the_entries(paper):
    """``configs/<paper>/*.py`` are the metafile's entries, one entry per config; returns
    the metafile's models."""
    from mmctx.utils.metafile import load_metafile
    configs = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIGS, paper, '*.py')))
    models = load_metafile(paper)['Models']
    names = [m['Name'] + '.py' for m in models]
    assert len(names) == len(set(names)), [n for n, c in Counter(names).items() if c > 1]
    assert sorted(names) == configs
    return models


def check_paper_rows(paper, counts, orders=True):
    """Every (table, row) of the paper is reproduced once, ``counts`` rows per table
    ({'Table 2': 4, ...}); with ``orders`` each table's rows have the places 1..n of the
    paper's table, once each. Returns ``[(config name, row)]``."""
    from mmctx.utils.metafile import metafile_models
    rows = [(name, r) for name, m in metafile_models(paper).items() for r in m['Paper Rows']]
    keys = [(r['Table'], r['Row']) for _, r in rows]
    assert len(keys) == len(set(keys)), [k for k, c in Counter(keys).items() if c > 1]
    assert dict(Counter(t for t, _ in keys)) == counts
    if orders:
        for table, n in counts.items():
            places = sorted(r['Order'] for _, r in rows if r['Table'] == table)
            assert places == list(range(1, n + 1)), table
    return rows


def check_readme_rendered(paper, sections=()):
    """``configs/<paper>/README.md``'s tables are rendered from the metafile, link every
    config and have the ``sections`` (headings without the ``#``s); returns the text."""
    from mmctx.utils.metafile import metafile_models, render_readme
    with open(osp.join(CONFIGS, paper, 'README.md')) as f:
        text = f.read()
    assert render_readme(paper, text) == text, \
        f'configs/{paper}/README.md is stale: run python tools/misc/model_zoo_tables.py {paper}'
    for name in metafile_models(paper):
        assert f'(./{name})' in text, name
    for section in sections:
        assert re.search(rf'\n#+ {re.escape(section)}\n', text), section
    return text


def model_zoo_tables_check(paper):
    """``tools/misc/model_zoo_tables.py --check <paper>``, run in this process (the tool's
    start-up in its own interpreter: tests/test_configs/test_gsa.py); returns its code."""
    import importlib.util
    path = osp.join(osp.dirname(CONFIGS), 'tools', 'misc', 'model_zoo_tables.py')
    spec = importlib.util.spec_from_file_location('model_zoo_tables', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool.main(['--check', paper])
