"""The model zoo's one source: ``configs/<paper>/metafile.yml``.

Each paper folder holds a metafile in mmdet's format (``Collections`` with the
paper, ``Models`` with one entry per config) plus, per model, the table rows
of the paper it reproduces (``Paper Rows``: table, row, the paper's metrics)
and, in ``Metadata``, the settings that tell the row from its neighbours.
Tests check every config against its entry; the README tables are rendered
from it (:func:`render_table`, ``tools/misc/model_zoo_tables.py``), between

    <!-- model-zoo: Task A, Task B -->
    ...
    <!-- /model-zoo -->

markers that name the ``Metadata.Task`` values the table shows.
"""
import os.path as osp
import re
from typing import Dict, List, Optional

import yaml

__all__ = ['REPO', 'load_metafile', 'metafile_models', 'render_table', 'render_readme']

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_MARK = re.compile(r'(<!-- model-zoo: (?P<tasks>[^>]*?) -->\n)(?P<body>.*?)(<!-- /model-zoo -->)',
                   re.S)
#: columns of the rendered tables, as mmdet's and mmseg's model zoos
COLUMNS = ('Table', 'Row', 'Config', 'Paper', 'Ours', 'Params (M, ours)', 'Mem (GB)',
           'Inf time (fps)', 'Download')


def load_metafile(paper: str, repo: str = REPO) -> dict:
    """The parsed ``configs/<paper>/metafile.yml``; a missing key is an error naming it."""
    path = osp.join(repo, 'configs', paper, 'metafile.yml')
    with open(path) as f:
        meta = yaml.safe_load(f)
    for key in ('Collections', 'Models'):
        if not meta or key not in meta:
            raise KeyError(f'{path}: no {key!r} section')
    for model in meta['Models']:
        for key in ('Name', 'Config', 'Metadata', 'Paper Rows'):
            if key not in model:
                raise KeyError(f'{path}: model {model.get("Name")!r} has no {key!r}')
        if osp.basename(model['Config']) != model['Name'] + '.py':
            raise ValueError(f'{path}: model {model["Name"]!r} names config '
                             f'{model["Config"]!r}')
    return meta


def metafile_models(paper: str, repo: str = REPO) -> Dict[str, dict]:
    """{config file name: metafile entry} of the paper folder."""
    return {osp.basename(m['Config']): m for m in load_metafile(paper, repo)['Models']}


def _metrics(metrics: dict) -> str:
    if not metrics:
        return '–'
    return ', '.join(f'{k} {v}' for k, v in metrics.items())


def _table_key(table: str):
    m = re.search(r'(\d+)', table)
    return (int(m.group(1)) if m else 1 << 30, table)


def render_table(paper: str, tasks: List[str], repo: str = REPO) -> str:
    """The markdown table of the models whose ``Metadata.Task`` is in ``tasks``:
    one line per paper row (ordered by table, then by the row's ``Order`` in
    the paper's table), then the configs that reproduce no row."""
    lines = ['| ' + ' | '.join(COLUMNS) + ' |', '|' + '---|' * len(COLUMNS)]
    rows, extra = [], []
    for i, model in enumerate(load_metafile(paper, repo)['Models']):
        md = model['Metadata']
        if md.get('Task') not in tasks:
            continue
        config = f'[{model["Name"]}](./{model["Name"]}.py)'
        ours = model.get('Results')
        common = [_metrics(ours[0]['Metrics']) if ours else '–',
                  f'{md["Parameters (M)"]:.2f}', str(md.get('Training Memory (GB)', '–')),
                  str(md.get('inference time (fps)', '–')), model.get('Weights', '–')]
        for j, row in enumerate(model['Paper Rows']):
            rows.append((_table_key(row['Table']), row.get('Order', 0), i, j,
                         [row['Table'], row['Row'], config, _metrics(row['Metrics'])] + common))
        if not model['Paper Rows']:
            extra.append(['–', md.get('Note', 'no paper row'), config, '–'] + common)
    for *_, cells in sorted(rows, key=lambda r: r[:4]):
        lines.append('| ' + ' | '.join(cells) + ' |')
    for cells in extra:
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def render_readme(paper: str, text: Optional[str] = None, repo: str = REPO) -> str:
    """``configs/<paper>/README.md`` with every marked table rendered anew."""
    if text is None:
        with open(osp.join(repo, 'configs', paper, 'README.md')) as f:
            text = f.read()

    def sub(m):
        tasks = [t.strip() for t in m.group('tasks').split(',')]
        return m.group(1) + render_table(paper, tasks, repo) + m.group(4)

    return _MARK.sub(sub, text)
