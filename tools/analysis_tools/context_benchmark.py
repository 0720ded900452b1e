"""The context benchmark: train each paper's module, shrunk to a CPU, on scenes
whose labels only long-range context can decide, and report it against the
same network without the module (floor) and with the cue moved next to each
object (ceiling). See mmctx/analysis/context_benchmark.py for the task, the
scores and the rows, and docs/context_benchmark/README.md for the results.

    python tools/analysis_tools/context_benchmark.py            # every row, 3 seeds
    python tools/analysis_tools/context_benchmark.py --hour     # four papers' rows, 3 seeds (< 1 h)
    python tools/analysis_tools/context_benchmark.py --quick    # floor vs Base-OC (SA), 1 seed (~1 min)

Each row trains its task's iterations (segmentation 600, detection 1200;
the group "RetinaNet (det) (twins, 2x budget)" 2400; ``--quick`` 300;
``--iters`` sets every row's). Each (row, seed) trains in its own process
(``--jobs`` at a time, one thread each) and leaves
``<work-dir>/runs/<row>/seed<k>-<iters>it.json`` (scores, training wall time,
peak resident memory); rows that compose to the same run (the RetinaNet
floors of Woo et al. and Lee et al.) train it once and both record it
(``shared_runs``); a re-run reuses the records unless ``--force``, and
``--reuse docs/context_benchmark/results.json`` takes the committed runs (a
fresh clone then trains only the rows that have none). The table
(markdown), the records (json) and a bar chart (PNG) go to ``--out``:
``results.*`` for every row, ``results_<groups>.*`` for ``--groups``,
``hour.*`` for ``--hour``, ``quick.*`` for ``--quick``.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools', 'dataset_converters'))

from mmctx.analysis.context_benchmark import (  # noqa: E402
    HOUR_GROUPS, KEY_DISTANCE, QUICK_ITERS, QUICK_ROWS, ROWS, SCENE_SETS, compose_config,
    headline_rows, render_table, shared_runs, slug, summarize, train_and_score)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument('--quick', action='store_true',
                      help='the floor and Base-OC (SA) only, one seed, QUICK_ITERS (300) '
                      'iterations')
    size.add_argument('--hour', action='store_true',
                      help='the rows the papers report (with floors and ceilings) of '
                      f'{", ".join(HOUR_GROUPS)}: under an hour on two cores')
    p.add_argument('--groups', nargs='+', help='only these groups (e.g. OCNet)')
    p.add_argument('--seeds', type=int, nargs='+', help='training seeds (default 0 1 2)')
    p.add_argument('--iters', type=int,
                   help='training iterations of every row (default: its task\'s, '
                        'segmentation 600, detection 1200)')
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-val', type=int, default=100)
    p.add_argument('--jobs', type=int, default=2, help='runs in parallel (one thread each)')
    p.add_argument('--work-dir', default='work_dirs/context_benchmark')
    p.add_argument('--out', default='docs/context_benchmark',
                   help='where the table, the records and the chart go')
    p.add_argument('--force', action='store_true', help='re-run rows whose records exist')
    p.add_argument('--reuse', metavar='JSON',
                   help='take the runs recorded in this results file (e.g. the committed '
                        'docs/context_benchmark/results.json) instead of training them again '
                        '(same row, seed and iterations); --force trains them all')
    p.add_argument('--run-one', help=argparse.SUPPRESS)  # internal: one (row, seed) as json
    return p.parse_args(argv)


def run_one(spec: dict) -> dict:
    """Train and score one (row, seed) in this process (a child of main)."""
    import torch

    torch.set_num_threads(1)
    row = next(r for r in ROWS if r.key == spec['row'])
    cfg = compose_config(row, spec['data_root'], spec['iters'], spec['seed'],
                         spec['work_dir'])
    scores, wall = train_and_score(cfg, row.task)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(row=row.key, seed=spec['seed'], iters=spec['iters'], scores=scores,
                wall_s=wall, peak_mb=peak_mb, meta=row_meta(row))


def row_meta(row) -> dict:
    """What a run's record says of its row (the table's labels)."""
    return dict(group=row.group, name=row.name, task=row.task, role=row.role,
                paper=row.paper, config=row.config, data=row.data)


def load_recorded(path: str) -> dict:
    """The runs of a results file (``--reuse``), by (row, seed, iterations)."""
    with open(path) as f:
        records = json.load(f).get('records')
    if not isinstance(records, list):
        raise SystemExit(f'--reuse {path}: no "records" list; expected a results.json '
                         'written by this tool')
    return {(r['row'], r['seed'], r['iters']): r for r in records}


def make_data(root: str, rows, num_train: int, num_val: int) -> None:
    """The scenes the rows train on, each set once: ``<root>/<row.data_dir>``
    at the row's size and key distance (``KEY_DISTANCE``)."""
    from make_context_shapes import make_context_shapes
    for name, size, data in sorted({(r.data_dir, r.img_size, r.data) for r in rows}):
        scenes, oracle = SCENE_SETS[data]
        make_context_shapes(osp.join(root, name), num_train, num_val, img_size=size,
                            min_key_distance=KEY_DISTANCE[size], oracle=oracle,
                            scenes=scenes)


def plot(summary, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.36 * len(summary)), 6))
    colours = {'floor': '#888888', 'ceiling': '#2b8cbe', 'module': '#e6550d'}
    for i, r in enumerate(summary):
        m, s = r['stats']['context_acc']
        ax.bar(i, 100 * m, yerr=100 * s, capsize=4, color=colours[r['role']])
    ax.axhline(100 / 3, ls='--', c='k', lw=1, label='chance (1/3)')
    ax.set_xticks(range(len(summary)))
    ax.set_xticklabels([f'{r["group"]}: {r["name"]}' for r in summary], rotation=60,
                       ha='right', rotation_mode='anchor', fontsize=7)
    ax.set_ylabel('context accuracy (%)')
    ax.set_ylim(0, 100)
    ax.legend(loc='upper left', fontsize=8)
    ax.set_title('mmctx context benchmark (mean ± std over seeds)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    if args.run_one:
        with open(args.run_one) as f:
            spec = json.load(f)
        record = run_one(spec)
        with open(spec['out'], 'w') as f:
            json.dump(record, f, indent=1)
        return 0
    rows = (QUICK_ROWS if args.quick else headline_rows(ROWS, HOUR_GROUPS) if args.hour
            else list(ROWS))
    if args.groups:
        unknown = set(args.groups) - {r.group for r in ROWS}
        if unknown:
            raise SystemExit(f'--groups: unknown {sorted(unknown)}; the groups are '
                             f'{sorted({r.group for r in ROWS})}')
        rows = [r for r in rows if r.group in args.groups]
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    start = time.perf_counter()
    data_root = osp.join(args.work_dir, 'data')
    make_data(data_root, rows, args.num_train, args.num_val)

    todo, records = [], []
    done_here = 0
    recorded = load_recorded(args.reuse) if args.reuse and not args.force else {}
    iters_of = {row.key: args.iters or (QUICK_ITERS if args.quick else row.iters)
                for row in rows}
    for row in rows:
        iters = iters_of[row.key]
        for seed in seeds:
            out = osp.join(args.work_dir, 'runs', row.key, f'seed{seed}-{iters}it.json')
            # a run recorded earlier, labelled as the row is now (its paper number...)
            if osp.isfile(out) and not args.force:
                with open(out) as f:
                    records.append(dict(json.load(f), meta=row_meta(row)))
                continue
            os.makedirs(osp.dirname(out), exist_ok=True)
            if (row.key, seed, iters) in recorded:
                records.append(dict(recorded[row.key, seed, iters], meta=row_meta(row)))
                with open(out, 'w') as f:  # as if run here: a later call reuses it
                    json.dump(records[-1], f, indent=1)
                continue
            todo.append((row, seed, out))

    # a run that another row's composes to as well: trained once, recorded for both
    shared = shared_runs(rows, data_root, iters_of) if todo else {}
    copies = [item for item in todo if shared[item[0].key] != item[0].key]
    todo = [item for item in todo if item not in copies]

    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    running, failed = [], []
    while todo or running:
        while todo and len(running) < max(1, args.jobs):
            row, seed, out = todo.pop(0)
            spec = dict(row=row.key, seed=seed, iters=iters_of[row.key], data_root=data_root,
                        out=out, work_dir=osp.join(args.work_dir, 'runs', row.key,
                                                   f'seed{seed}'))
            with open(out + '.spec', 'w') as f:
                json.dump(spec, f)
            log = open(out + '.log', 'w')
            proc = subprocess.Popen([sys.executable, osp.abspath(__file__), '--run-one',
                                     out + '.spec'], stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=REPO)
            running.append((proc, row, seed, out, log))
        time.sleep(0.5)
        for item in list(running):
            proc, row, seed, out, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            if proc.returncode:
                failed.append(f'{row.group} / {row.name} seed {seed} (exit '
                              f'{proc.returncode}): see {out}.log')
                print('failed:', failed[-1], flush=True)
                continue
            with open(out) as f:
                rec = json.load(f)
            records.append(rec)
            done_here += 1
            print(f'{row.group:6s} {row.name:36s} seed {seed}: context acc '
                  f'{100 * rec["scores"]["context_acc"]:.1f} % ({rec["wall_s"]:.0f} s)',
                  flush=True)

    if failed:
        raise SystemExit('context benchmark: runs failed, no table written:\n  '
                         + '\n  '.join(failed))
    by_run = {(r['row'], r['seed'], r['iters']): r for r in records}
    for row, seed, out in copies:
        source = by_run[shared[row.key], seed, iters_of[row.key]]
        records.append(dict(source, row=row.key, meta=row_meta(row), same_run_as=source['row']))
        with open(out, 'w') as f:
            json.dump(records[-1], f, indent=1)
    order = {r.key: i for i, r in enumerate(rows)}
    records.sort(key=lambda r: (order[r['row']], r['seed']))
    summary = summarize(records)
    total = time.perf_counter() - start
    train_total = sum(r['wall_s'] for r in records if 'same_run_as' not in r)
    os.makedirs(args.out, exist_ok=True)
    # a part of the rows gets its own files: the full table is not replaced
    name = ('quick' if args.quick else 'hour' if args.hour else 'results' if not args.groups
            else 'results_' + '_'.join(slug(g) for g in sorted(args.groups)))
    table = render_table(summary)
    with open(osp.join(args.out, f'{name}.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.out, f'{name}.json'), 'w') as f:
        json.dump(dict(iters={r.group: iters_of[r.key] for r in rows}, seeds=seeds,
                       jobs=args.jobs, wall_s=total, train_s_total=train_total,
                       reused=len(records) - done_here - len(copies), shared=len(copies),
                       records=records), f, indent=1)
    plot(summary, osp.join(args.out, f'{name}.png'))
    print(table)
    print(f'context benchmark: {len(records)} runs ({done_here} trained here, {len(copies)} '
          f'shared between rows that compose to the same run, '
          f'{len(records) - done_here - len(copies)} reused from earlier invocations), '
          f'{total / 60:.1f} min wall here ({args.jobs} at a time); '
          f'training time of all runs {train_total / 60:.1f} min; table, records and chart '
          f'in {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
