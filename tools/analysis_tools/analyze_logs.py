"""Plot the curves of training runs and time them, from mmengine's scalar logs.

mmengine's ``LoggerHook`` writes one JSON object a line to
``<work_dir>/<timestamp>/vis_data/scalars.json``: a training line every
``interval`` iterations (``lr``, ``loss``..., ``time``, ``data_time``,
``iter`` - the global iteration -, ``epoch`` for epoch-based runs, ``step``)
and a validation line after each evaluation (the metrics, ``time``,
``data_time`` and ``step``: the epoch, or the iteration of iteration-based
runs). A LOG argument is such a file, a ``<timestamp>`` directory, or a work
directory (its newest ``<timestamp>/vis_data/scalars.json``).

Examples::

    # loss of two runs on one plot
    python tools/analysis_tools/analyze_logs.py plot_curve work_dirs/a work_dirs/b \
        --keys loss --legend gc nl --out loss.png
    # a validation metric (x axis: the iteration it was evaluated at)
    python tools/analysis_tools/analyze_logs.py plot_curve work_dirs/a \
        --keys coco/bbox_mAP mIoU --out metrics.png
    # average iteration time, slowest / fastest epoch
    python tools/analysis_tools/analyze_logs.py cal_train_time work_dirs/a
"""
import argparse
import glob
import json
import os.path as osp
from collections import OrderedDict

import numpy as np

#: keys of a scalars.json line that say where it was logged, not what
POSITION_KEYS = ('step', 'iter', 'epoch')


def find_scalars(path):
    """The scalars.json of ``path`` (the file, a run's or a work directory)."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'log not found: {path}')
    for pattern in ('scalars.json', osp.join('vis_data', 'scalars.json'),
                    osp.join('*', 'vis_data', 'scalars.json')):
        found = sorted(glob.glob(osp.join(path, pattern)))
        if found:
            return found[-1]  # timestamps sort in time order
    raise FileNotFoundError(f'no vis_data/scalars.json under {path}')


def load_scalars(path):
    """``dict(path=..., train=[lines], val=[lines])`` of one run's scalars.json.

    A training line has the global ``iter``; a validation line has not.
    """
    path = find_scalars(path)
    run = dict(path=path, train=[], val=[])
    with open(path) as f:
        for num, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}, line {num}: not JSON ({err})') from None
            run['train' if 'iter' in record else 'val'].append(record)
    if not run['train'] and not run['val']:
        raise ValueError(f'{path} holds no logged scalar')
    return run


def available_keys(run):
    keys = OrderedDict()
    for record in run['train'] + run['val']:
        for key in record:
            if key not in POSITION_KEYS:
                keys[key] = None
    return list(keys)


def series(run, key):
    """(iterations, values) of ``key`` in a run.

    Training keys are placed at their iteration; validation keys at the
    iteration they were evaluated at (for epoch-based runs, the last
    iteration of the epoch, where its validation ran). A key logged in
    training lines is read from them (``time`` is the iteration time there).
    """
    train = [r for r in run['train'] if key in r]
    if train:
        return [r['iter'] for r in train], [r[key] for r in train]
    val = [r for r in run['val'] if key in r]
    if not val:
        raise KeyError(f'{key!r} is not logged in {run["path"]}; its keys: '
                       + ', '.join(available_keys(run)))
    if any('epoch' in r for r in run['train']):
        last_iter = {}
        for r in run['train']:
            last_iter[r['epoch']] = max(last_iter.get(r['epoch'], 0), r['iter'])
        xs = [last_iter.get(r['step'], r['step']) for r in val]
    else:
        xs = [r['step'] for r in val]
    return xs, [r[key] for r in val]


def plot_curve(runs, keys, legend=None, title=None, out=None):
    """One plot, a line per (run, key), labelled ``<legend>: <key>``; returns the figure.

    ``legend`` names the runs (default: their scalars.json paths); with one
    run and no ``legend`` the labels are just the keys.
    """
    import matplotlib
    if out is not None:
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if legend is not None and len(legend) != len(runs):
        raise ValueError(f'--legend names {len(legend)} runs, but {len(runs)} logs are given')
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, run in enumerate(runs):
        for key in keys:
            xs, ys = series(run, key)
            if legend is not None:
                label = f'{legend[i]}: {key}'
            else:
                label = key if len(runs) == 1 else f'{run["path"]}: {key}'
            ax.plot(xs, ys, label=label, marker='o' if len(xs) < 20 else None)
    ax.set_xlabel('iteration')
    ax.set_ylabel(keys[0] if len(keys) == 1 else 'value')
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    if out is not None:
        fig.savefig(out, dpi=100, bbox_inches='tight')
        print(f'saved {out}')
    else:
        plt.show()
    return fig


def train_time(run, include_outliers=False):
    """Iteration times of a run, from the ``time`` of its training lines.

    Each line's ``time`` is the mean over the iterations since the previous
    line. Unless ``include_outliers``, the first line of every epoch (of the
    run, when it is iteration-based) is left out: it holds the start-up
    (data loader workers, cudnn benchmarking). Returns ``dict(avg, std,
    epochs)``; ``epochs`` maps each epoch to its mean iteration time (empty
    for an iteration-based run).
    """
    lines = [r for r in run['train'] if 'time' in r]
    if not lines:
        raise ValueError(f'{run["path"]} has no training line with a time')
    groups = OrderedDict()
    for r in lines:
        groups.setdefault(r.get('epoch'), []).append(r['time'])
    kept = OrderedDict(
        (epoch, times if include_outliers or len(times) == 1 else times[1:])
        for epoch, times in groups.items())
    all_times = np.array([t for times in kept.values() for t in times])
    epochs = OrderedDict((e, float(np.mean(t))) for e, t in kept.items() if e is not None)
    return dict(avg=float(all_times.mean()), std=float(all_times.std()), epochs=epochs)


def cal_train_time(runs, include_outliers=False):
    """Print (and return) :func:`train_time` of every run."""
    results = []
    for run in runs:
        t = train_time(run, include_outliers)
        print(f'-----Analyze train time of {run["path"]}-----')
        print(f'average iteration time: {t["avg"]:.4f} s (std over logged '
              f'intervals {t["std"]:.4f})')
        if t['epochs']:
            per_epoch = t['epochs']
            slowest = max(per_epoch, key=per_epoch.get)
            fastest = min(per_epoch, key=per_epoch.get)
            print(f'slowest epoch {slowest}: {per_epoch[slowest]:.4f} s/iter')
            print(f'fastest epoch {fastest}: {per_epoch[fastest]:.4f} s/iter')
            print(f'time std over epochs: {np.std(list(per_epoch.values())):.4f}')
            t.update(slowest=slowest, fastest=fastest)
        results.append(t)
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Analyze mmengine training logs')
    sub = parser.add_subparsers(dest='task', required=True)
    plot = sub.add_parser('plot_curve', help='plot keys of one or more runs')
    plot.add_argument('logs', nargs='+', help='scalars.json files or (work) directories')
    plot.add_argument('--keys', nargs='+', default=['loss'],
                      help='logged keys to plot (e.g. loss lr coco/bbox_mAP mIoU)')
    plot.add_argument('--legend', nargs='+', help='one name per run')
    plot.add_argument('--title')
    plot.add_argument('--out', help='save the plot here instead of showing it')
    timing = sub.add_parser('cal_train_time', help='iteration time of one or more runs')
    timing.add_argument('logs', nargs='+', help='scalars.json files or (work) directories')
    timing.add_argument('--include-outliers', action='store_true',
                        help='keep the first logged interval of every epoch')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    runs = [load_scalars(path) for path in args.logs]
    if args.task == 'plot_curve':
        return plot_curve(runs, args.keys, args.legend, args.title, args.out)
    return cal_train_time(runs, args.include_outliers)


if __name__ == '__main__':
    main()
