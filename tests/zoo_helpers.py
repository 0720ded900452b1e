"""Reading the model-zoo tables of ``configs/<paper>/README.md`` in tests.

Every table row that links a config has our measured parameter count in its
"Our params" (or "Params (M, ours)") column, in M, optionally followed by
``M`` and the overhead ``(+x.xx)`` / ``(-x.xx)``; the tests compare it with
the count of the built model, so the README stays true.
"""
import os.path as osp
import re

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
