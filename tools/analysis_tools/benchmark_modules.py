"""Benchmark context modules and decode heads in inference (OCNet Table 4, Fig. 3-4).

Yuan et al., "OCNet: Object Context for Semantic Segmentation":

    # Table 4: heads on a 1 x 2048 x 128 x 128 feature map, beside the paper's column
    python tools/analysis_tools/benchmark_modules.py --kind heads
    # the same without timing (memory and GFLOPs only; for a busy machine)
    python tools/analysis_tools/benchmark_modules.py --kind heads --repeat 0
    # GFLOPs only, beside the paper's, in seconds (no forward pass)
    python tools/analysis_tools/benchmark_modules.py --kind heads --repeat 0 --no-memory
    # Fig. 4: blocks on 1 x 512 x 128 x 128, fused vs explicit paths
    python tools/analysis_tools/benchmark_modules.py --kind blocks --device cuda
    # Fig. 3: GFLOPs against input size, drawn to a PNG
    python tools/analysis_tools/benchmark_modules.py --kind blocks \
        --sizes 32 64 96 128 --plot-metric gflops --out-dir work_dirs/bench
    # mmctx beside its peers (mmcv, mmseg, timm, the OCNet authors' blocks), weights
    # transferred and outputs checked equal, interleaved, the papers' sizes, 1 and 2
    # threads, forward and forward + backward -> docs/benchmarks/peers_cpu.{csv,json,png}
    python tools/analysis_tools/benchmark_modules.py --peers --threads 1 2
    # fused against explicit softmax attention at the blocks' sizes (impl='auto' rule)
    python tools/analysis_tools/benchmark_modules.py --kind attention --threads 1 2

Prints a table and writes ``benchmark.csv`` / ``benchmark.json`` (and
``sweep.png``) to --out-dir. Columns: peak memory (MiB; CPU: the allocator's
running total from the profiler's records, temporaries inside ops included;
CUDA: the allocator's peak), ``gmacs`` (multiply-adds, attention products
included), ``gflops`` (2 x gmacs, the unit of OCNet's Table 4),
``gflops_conv`` (conv / linear layers only, 2 x their multiply-adds),
median time (ms), the fused path's speed-up, and for Table 4 heads the
paper's memory / GFLOPs / time and ``vs_paper`` (our gflops / paper's).

``--peers`` (:mod:`mmctx.analysis.peers`) writes ``peers_<device>.csv`` /
``.json`` / ``.png`` (default to ``docs/benchmarks``): one row per (block,
peer, size, pass, threads) with mmctx's and the peer's median time and peak
memory and their ratios (mmctx / peer), on CUDA also each call's host time
(``ours_host_ms`` / ``peer_host_ms``: until it returned, before the device was
synchronised) and with ``--graphs`` its time replayed from a CUDA graph
(``ours_graph_ms`` / ``peer_graph_ms``: the kernels alone), and a summary
against the best peer.
``--kind attention`` writes ``attention_impls_<device>.csv`` / ``.json`` (``--dtypes``
 float32 float16 bfloat16 for several; time and peak memory of each path).
"""
import argparse
import csv
import json
import os
import os.path as osp

import torch

from mmctx.analysis import peers as peer_bench
from mmctx.analysis.benchmark import (ATTENTION_CASES, BLOCK_SPECS, HEAD_SPECS,
                                      QUICK_ATTENTION_CASES, attention_impl_sweep,
                                      run_benchmark, table4_notes)
from mmctx.utils import register_all_modules

DEFAULT_CHANNELS = dict(blocks=512, heads=2048)
COLUMNS = ('module', 'impl', 'input', 'device', 'memory_mb', 'paper_memory_mb', 'gmacs',
           'gflops', 'gflops_conv', 'paper_gflops', 'vs_paper', 'time_ms', 'paper_time_ms',
           'speedup')
PEER_COLUMNS = ('block', 'peer', 'input', 'pass', 'threads', 'device', 'ours_ms', 'peer_ms',
                'time_ratio', 'ours_mb', 'peer_mb', 'memory_ratio', 'check_rel', 'note')
# CUDA rows also: the time until the call returned, before the device was
# synchronised, and (--graphs) the call replayed from a CUDA graph
EXTRA_COLUMNS = ('ours_host_ms', 'peer_host_ms', 'ours_graph_ms', 'peer_graph_ms')
SUMMARY_COLUMNS = ('block', 'input', 'pass', 'threads', 'best_peer_time', 'time_ratio',
                   'best_peer_memory', 'memory_ratio')
ATTENTION_COLUMNS = ('case', 'groups', 'tokens', 'qk_width', 'v_width', 'dtype', 'device',
                     'threads', 'pass', 'fused_ms', 'explicit_ms', 'fused_mb', 'explicit_mb',
                     'auto', 'fastest', 'auto_is_fastest')
DTYPES = dict(float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Benchmark context modules')
    parser.add_argument('--kind', choices=['blocks', 'heads', 'attention'], default='blocks',
                        help='attention: fused vs explicit softmax attention at the '
                        "blocks' sizes, beside impl='auto''s choice")
    parser.add_argument('--peers', action='store_true',
                        help='mmctx blocks beside their peers (mmctx.analysis.peers)')
    parser.add_argument('--threads', type=int, nargs='+', default=[1],
                        help='--peers / --kind attention: torch thread counts')
    parser.add_argument('--passes', nargs='+', default=list(peer_bench.PASSES),
                        choices=list(peer_bench.PASSES))
    parser.add_argument('--quick', action='store_true',
                        help='--peers / --kind attention: tiny sizes (a smoke test)')
    parser.add_argument('--only', nargs='+', default=None,
                        help='benchmark only entries whose name contains one of these')
    parser.add_argument('--channels', type=int, default=None,
                        help='input channels (default 512 blocks, 2048 heads)')
    parser.add_argument('--size', type=int, nargs=2, default=[128, 128],
                        metavar=('H', 'W'))
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--sizes', type=int, nargs='+', default=None,
                        help='sweep square inputs of these sizes and plot; with --peers: '
                        "these square sizes instead of the papers' (C: --channels or the "
                        "papers')")
    parser.add_argument('--plot-metric', default='gflops',
                        choices=['gflops', 'gmacs', 'time_ms', 'memory_mb'])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--graphs', action='store_true',
                        help='--peers on CUDA: also time each call replayed from a CUDA '
                        "graph (the kernels' time alone, no host cost)")
    parser.add_argument('--dtypes', nargs='+', default=['float32'], choices=list(DTYPES),
                        help='--kind attention: the dtypes of q, k and v')
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed runs per entry (0: no timing, memory and FLOPs only)')
    parser.add_argument('--no-memory', action='store_true',
                        help='skip the memory measurement (GFLOPs are counted on fake '
                        'tensors, so --repeat 0 --no-memory runs no forward at all)')
    parser.add_argument('--no-impl-compare', action='store_true',
                        help='run only the default (fused) path of each block')
    parser.add_argument('--out-dir', default=None,
                        help='default work_dirs/benchmark_modules, docs/benchmarks for --peers')
    return parser.parse_args(argv)


def format_table(rows, columns=COLUMNS):
    """The rows as a text table, leaving out columns empty in every row."""
    columns = [c for c in columns if any(r.get(c) is not None for r in rows)]
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    lines = ['  '.join(c.ljust(widths[c]) for c in columns)]
    lines.append('  '.join('-' * widths[c] for c in columns))
    for row in rows:
        lines.append('  '.join(_fmt(row.get(c)).ljust(widths[c]) for c in columns))
    return '\n'.join(lines)


def _fmt(value):
    if value is None:
        return ''
    if isinstance(value, float):
        return f'{value:.2f}'
    return str(value)


def plot_sweep(rows, metric, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = {}
    for row in rows:
        key = row['module'] if row['impl'] in ('-', 'fused') else None
        if key is None:
            continue
        size = int(row['input'].split('x')[-1])
        series.setdefault(key, []).append((size, row[metric]))
    for name, points in series.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker='o', label=name)
    ax.set_xlabel('input size (H = W)')
    ax.set_ylabel({'gflops': 'GFLOPs (2 x multiply-adds)', 'gmacs': 'G multiply-adds',
                   'time_ms': 'time (ms)', 'memory_mb': 'peak memory (MiB)'}[metric])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_rows(rows, columns, path_stem):
    """``<path_stem>.csv`` and ``.json``."""
    with open(path_stem + '.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        writer.writerows(rows)
    with open(path_stem + '.json', 'w') as f:
        json.dump(rows, f, indent=1)


def plot_ratios(rows, path):
    """Time and memory ratio (mmctx / peer) per row, a line at 1.0."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r['time_ratio'] is not None]
    labels = [f"{r['block']} vs {r['peer']}, {r['input']}, "
              f"{'fwd' if r['pass'] == 'forward' else 'fwd+bwd'}, {r['threads']} thr"
              for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.22 * len(rows) + 1.5), sharey=True)
    for ax, key, title in zip(axes, ('time_ratio', 'memory_ratio'),
                              ('time, mmctx / peer', 'peak memory, mmctx / peer')):
        values = [r[key] if r[key] is not None else 0.0 for r in rows]
        colors = ['tab:green' if v <= 1.0 else 'tab:red' for v in values]
        ax.barh(range(len(rows)), values, color=colors)
        ax.axvline(1.0, color='k', lw=1)
        ax.set_xscale('log')
        ax.set_title(title)
        ax.grid(alpha=0.3, axis='x')
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels(labels, fontsize=6)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main_peers(args):
    comparisons, notes = peer_bench.select(args.only)
    for note in notes:
        print(note)
    if not comparisons:
        raise SystemExit(f'--only {args.only} matches no peer comparison')
    sizes = peer_bench.QUICK_SIZES if args.quick else None
    if args.sizes:  # square maps of these sizes, each family at its channels
        sizes = {family: [(args.batch, args.channels or shapes[0][1], s, s) for s in args.sizes]
                 for family, shapes in peer_bench.DEFAULT_SIZES.items()}
    rows = peer_bench.run_peers(comparisons, sizes, threads=args.threads, passes=args.passes,
                                repeat=args.repeat, device=args.device,
                                memory=not args.no_memory, graphs=args.graphs)
    summary = peer_bench.best_peer_summary(rows)
    columns = PEER_COLUMNS + tuple(c for c in EXTRA_COLUMNS if any(c in r for r in rows))
    print(format_table(rows, columns))
    print('\nmmctx against the best peer (time: fastest peer; memory: leanest peer):')
    print(format_table(summary, SUMMARY_COLUMNS))
    out_dir = args.out_dir or 'docs/benchmarks'
    os.makedirs(out_dir, exist_ok=True)
    device = torch.device(args.device).type
    stem = osp.join(out_dir, f'peers_{device}')
    write_rows(rows, columns, stem)
    write_rows(summary, SUMMARY_COLUMNS, stem + '_summary')
    plot_ratios(rows, stem + '.png')
    print(f'results written to {stem}.csv / .json / .png (summary: {stem}_summary.*)')
    return rows


def main_attention(args):
    cases = QUICK_ATTENTION_CASES if args.quick else ATTENTION_CASES
    rows = attention_impl_sweep(cases, threads=args.threads, repeat=args.repeat,
                                dtypes=[DTYPES[d] for d in args.dtypes], passes=args.passes,
                                device=args.device, memory=not args.no_memory)
    print(format_table(rows, ATTENTION_COLUMNS))
    out_dir = args.out_dir or 'work_dirs/benchmark_modules'
    os.makedirs(out_dir, exist_ok=True)
    device = torch.device(args.device).type
    write_rows(rows, ATTENTION_COLUMNS, osp.join(out_dir, f'attention_impls_{device}'))
    print(f'results written to {out_dir}')
    return rows


def main(argv=None):
    register_all_modules()
    args = parse_args(argv)
    if args.repeat < 0:
        raise SystemExit(f'--repeat must be >= 0, got {args.repeat}')
    if args.peers:
        if args.repeat < 1:
            raise SystemExit('--peers times every pair: --repeat must be >= 1')
        return main_peers(args)
    if args.kind == 'attention':
        if args.repeat < 1:
            raise SystemExit('--kind attention: --repeat must be >= 1')
        return main_attention(args)
    args.out_dir = args.out_dir or 'work_dirs/benchmark_modules'
    specs = BLOCK_SPECS if args.kind == 'blocks' else HEAD_SPECS
    if args.only:
        specs = [s for s in specs if any(o.lower() in s[0].lower() for o in args.only)]
        if not specs:
            raise SystemExit(f'--only {args.only} matches no {args.kind} entry')
    channels = args.channels or DEFAULT_CHANNELS[args.kind]
    shapes = ([(args.batch, channels, s, s) for s in args.sizes] if args.sizes
              else [(args.batch, channels, *args.size)])
    rows = []
    for shape in shapes:
        rows += run_benchmark(specs, shape, device=args.device, repeat=args.repeat,
                              compare_impl=not args.no_impl_compare,
                              memory=not args.no_memory)
    print(format_table(rows))
    notes = table4_notes(rows)
    if notes:
        print('\nRows more than 10 % off the paper\'s GFLOPs (ours / paper), and why:')
        for n in notes:
            line = f"  {n['module']}: {n['gflops']:.1f} / {n['paper_gflops']}"
            if n['note'] is None:
                print(line + ': no known reason')
            else:
                print(line + f": {n['note']}: {n['adjusted_gflops']:.1f}")
    os.makedirs(args.out_dir, exist_ok=True)
    if notes:
        with open(osp.join(args.out_dir, 'table4_notes.json'), 'w') as f:
            json.dump(notes, f, indent=1)
    with open(osp.join(args.out_dir, 'benchmark.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with open(osp.join(args.out_dir, 'benchmark.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    if args.sizes:
        plot_sweep(rows, args.plot_metric, osp.join(args.out_dir, 'sweep.png'))
    print(f'results written to {args.out_dir}')
    return rows


if __name__ == '__main__':
    main()
