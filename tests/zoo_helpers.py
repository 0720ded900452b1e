"""Reading the model-zoo tables of ``configs/<paper>/README.md`` in tests.

Every table row that links a config ends with our measured parameter count
(in M, optionally followed by ``M`` and the overhead ``(+x.xx)`` / ``(-x.xx)``); the tests
compare it with the count of the built model, so the README stays true.
"""
import os.path as osp
import re

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs')


def readme_rows(paper, section):
    """``[(config file name, cells)]`` of the table rows that link a config in
    the ``## <section>...`` section of ``configs/<paper>/README.md``."""
    with open(osp.join(CONFIGS, paper, 'README.md')) as f:
        text = f.read()
    start = text.index('\n## ' + section)
    end = text.find('\n## ', start + 1)
    rows = []
    for line in text[start:end if end > 0 else None].splitlines():
        cells = [c.strip() for c in line.split('|')[1:-1]]
        link = re.search(r'\]\((?:\./)?([^)/]+\.py)\)', line)
        if cells and link:
            rows.append((link.group(1), cells))
    return rows


def _last_cell(cells):
    """(params, overhead or None) of a row's last cell: '46.50 M (+2.10)'."""
    m = re.fullmatch(r'([0-9.]+)(?: M)?(?: \(([+-][0-9.]+)\))?', cells[-1])
    assert m, f'last cell {cells[-1]!r} is not "<params>[ M][ (+/-<overhead>)]"'
    return float(m.group(1)), m.group(2) and float(m.group(2))


def readme_params(paper, section):
    """{config file name: our params in M} of the section's table rows."""
    return {name: _last_cell(cells)[0] for name, cells in readme_rows(paper, section)}


def readme_overheads(paper, section):
    """{config file name: overhead over its baseline in M} where the row gives one."""
    out = {}
    for name, cells in readme_rows(paper, section):
        overhead = _last_cell(cells)[1]
        if overhead is not None:
            out[name] = overhead
    return out
