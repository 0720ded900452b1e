"""``make bench-gpu``: everything a CUDA machine should measure, in one command.

    python3 tools/analysis_tools/bench_gpu.py                  # what `make bench-gpu` runs
    python3 tools/analysis_tools/bench_gpu.py --steps cost,amp --force
    .venv/bin/python tools/analysis_tools/bench_gpu.py --dry-run   # `make bench-gpu DRY_RUN=1`

Steps (``--steps``, comma-separated, in this order):

env      ``tools/setup_env_cuda.sh``: a CUDA torch and mmcv 2.1.0 with CUDA ops
         in ``.venv-cuda`` (seconds when its stamp is current). The later steps
         run in that venv's interpreter (this script re-runs itself there).
modules  Yuan et al., "OCNet: Object Context for Semantic Segmentation", Table 4
         and Fig. 4 protocol on the GPU: every context block (1 x 512 x 128 x 128)
         and decode head (1 x 2048 x 128 x 128) in inference, fused and explicit
         attention, in fp32 and under fp16 / bf16 autocast: peak memory, GFLOPs,
         median time; the ``--sizes`` GFLOPs sweep as a PNG; ratios ISA / SA,
         GC / NL, ENL / NL beside the paper's.
peers    every block beside its peers (mmcv, mmseg, timm where installed, the
         OCNet authors' released blocks; :mod:`mmctx.analysis.peers`) in fp32,
         inference and forward + backward, at the papers' sizes (time, the
         host's share of it, the kernels' alone replayed from a CUDA graph,
         memory), and the
         fused-against-explicit softmax-attention sweep in fp32 / fp16 / bf16
         behind ``impl='auto'``'s CUDA rule (whether it names the faster path).
cost     training and inference cost of each paper's baseline and module configs
         at the papers' input sizes on synthetic batches
         (:mod:`mmctx.analysis.training_cost`): seconds per iteration, peak GB,
         overhead over the baseline, beside what the paper claims.
amp      one fp16-autocast training iteration per config (mmengine's
         ``AmpOptimWrapper``, dynamic ``GradScaler``): finite loss and gradients,
         and the list of configs that fail.

Each step writes its results under ``--work-dir`` and is skipped when they are
there (``--force`` re-runs it); the cost and AMP steps also keep each config's
row as soon as it is measured, so an interrupted run resumes at the next
config. ``--budget-s S`` starts no cost / AMP config after S seconds (a
lent GPU's time is short): the report shows what was measured and names the
rest. ``--report-only`` measures nothing and writes the report of a work dir
on any machine, naming the machine of ``environment.json`` (written by the
run that measured).

At the end the report is written: ``docs/benchmarks/cuda_<device>.md`` and
``.csv`` (device, driver, torch, CUDA, date, the three tables).

``--dry-run`` runs every step's code on the CPU at tiny sizes: the env step
only prints its plan (``setup_env_cuda.sh --plan`` with a faked GPU), the
module table runs a few entries on small maps in fp32 and bf16, the cost step
three configs at ~100 px for one iteration, the AMP step two configs in bf16;
everything, the report included, goes to ``work_dirs/bench_gpu_dry``.
"""
import argparse
import csv
import datetime
import importlib.util
import json
import os
import os.path as osp
import platform
import re
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STEPS = ('env', 'modules', 'peers', 'cost', 'amp')

# Yuan et al. (OCNet) Fig. 4, 1 x 512 x 128 x 128, Titan XP: ISA / SA ratios.
PAPER_FIG4_ISA_SA = dict(memory=0.102, gflops=0.246, time=0.5)
# The dry run's blocks and heads: the pairs of the ratio table and one head pair.
DRY_RUN_MODULES = ('SA', 'ISA (8x8)', 'GC (r=16)', 'NL (embedded Gaussian)', 'ENL (efficient)',
                   'NL (explicit ENL family)', 'Base-OC (SA)', 'Base-OC (ISA)')
# The dry run's peer comparisons (names as mmctx.analysis.peers.select takes them).
DRY_RUN_PEERS = ('mmcv ContextBlock', 'ISAHead relations')
# Block pairs whose ratio the papers argue about: (numerator, denominator, source).
RATIO_PAIRS = [
    ('ISA (8x8)', 'SA', 'OCNet Fig. 4: memory 10.2 %, GFLOPs 24.6 %, time ~50 %'),
    ('GC (r=16)', 'NL (embedded Gaussian)',
     'GCNet Sec. 5.2 (Table 8a): a GC block ~250x less computation than an NL block '
     '(0.001 G vs 0.25 G)'),
    ('ENL (efficient)', 'NL (explicit ENL family)',
     'ENL Table 1: memory O(HW) vs O((HW)^2)'),
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Environment, module table, training cost and AMP check on a CUDA machine')
    parser.add_argument('--steps', default=','.join(STEPS),
                        help=f'comma-separated subset of {",".join(STEPS)}')
    parser.add_argument('--dry-run', action='store_true',
                        help='CPU, tiny sizes, a few configs; nothing is installed')
    parser.add_argument('--force', action='store_true',
                        help='re-run steps whose results exist')
    parser.add_argument('--work-dir', default=None,
                        help='step results (default work_dirs/bench_gpu[_dry])')
    parser.add_argument('--report-dir', default=None,
                        help='where the report goes (default docs/benchmarks; dry run: --work-dir)')
    parser.add_argument('--venv', default=osp.join(REPO, '.venv-cuda'),
                        help='the CUDA venv the env step builds and the other steps run in')
    parser.add_argument('--configs', nargs='+', default=None,
                        help='cost / AMP: only entries whose paper, name or config contains one')
    parser.add_argument('--amp-configs', nargs='+', default=None,
                        help='AMP: only these entries (default: as --configs)')
    parser.add_argument('--modules', nargs='+', default=None,
                        help='module table: only these blocks / heads (names as in '
                        'mmctx.analysis.benchmark, e.g. "ISA (8x8)" "Base-OC (ISA)")')
    parser.add_argument('--peers', nargs='+', default=None,
                        help='peers: only comparisons whose block or peer contains one of '
                        'these (mmctx.analysis.peers), e.g. "ContextBlock" "ISA"')
    parser.add_argument('--iters', type=int, default=None,
                        help='timed iterations per config (default 5; dry run 1)')
    parser.add_argument('--repeat', type=int, default=None,
                        help='timed runs per module (default 10; dry run 1)')
    parser.add_argument('--budget-s', type=float, default=None,
                        help='cost / AMP: start no config after this many seconds from the '
                        'start (a lent GPU\'s time is short); the report shows what was '
                        'measured and names the rest, and a later run resumes there')
    parser.add_argument('--report-only', action='store_true',
                        help='measure nothing: write the report from --work-dir\'s results '
                        'and the environment.json the measuring run left there (any machine)')
    parser.add_argument('--no-reexec', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.budget_s is not None and args.budget_s <= 0:
        parser.error(f'--budget-s {args.budget_s}: must be a positive number of seconds')
    args.deadline = None if args.budget_s is None else time.time() + args.budget_s
    steps = [s.strip() for s in args.steps.split(',') if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        parser.error(f'--steps {args.steps!r}: unknown step(s) {unknown}; choose from {STEPS}')
    args.steps = [s for s in STEPS if s in steps]
    if args.work_dir is None:
        args.work_dir = osp.join(REPO, 'work_dirs',
                                 'bench_gpu_dry' if args.dry_run else 'bench_gpu')
    if args.report_dir is None:
        args.report_dir = args.work_dir if args.dry_run else osp.join(REPO, 'docs', 'benchmarks')
    if args.iters is None:
        args.iters = 1 if args.dry_run else 5
    if args.repeat is None:
        args.repeat = 1 if args.dry_run else 10
    return args


def log(step, message):
    print(f'[bench-gpu {step}] {message}', flush=True)


class Progress:
    """A text progress bar, one line per finished item (readable in logs too)."""

    def __init__(self, step, total):
        self.step, self.total, self.done, self.start = step, total, 0, time.time()

    def update(self, label):
        self.done += 1
        elapsed = time.time() - self.start
        eta = elapsed / self.done * (self.total - self.done)
        filled = int(20 * self.done / max(self.total, 1))
        bar = '#' * filled + '.' * (20 - filled)
        log(self.step, f'[{bar}] {self.done}/{self.total} {elapsed:.0f} s, '
            f'ETA {eta:.0f} s  {label}')


# ---------------------------------------------------------------- env
def step_env(args):
    """Run tools/setup_env_cuda.sh (its plan only in a dry run); log to env.log."""
    os.makedirs(args.work_dir, exist_ok=True)
    env = dict(os.environ, MMCTX_CUDA_VENV=args.venv)
    cmd = ['bash', osp.join(REPO, 'tools', 'setup_env_cuda.sh')]
    if args.dry_run:
        cmd.append('--plan')
        env.setdefault('MMCTX_FAKE_COMPUTE_CAP', '9.0')
    elif args.force:
        env['MMCTX_FORCE_SETUP'] = '1'
    log('env', ' '.join(cmd))
    start = time.time()
    with open(osp.join(args.work_dir, 'env.log'), 'w') as logfile:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=REPO)
        for line in proc.stdout:
            sys.stdout.write(line)
            logfile.write(line)
        proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f'[bench-gpu env] tools/setup_env_cuda.sh failed '
                         f'(exit {proc.returncode}); '
                         f'see {osp.join(args.work_dir, "env.log")}')
    log('env', f'done in {time.time() - start:.0f} s')


def reexec_in_venv(args, argv):
    """Run the remaining steps with the CUDA venv's interpreter; returns its exit code."""
    python = osp.join(args.venv, 'bin', 'python')
    if not osp.isfile(python):
        raise SystemExit(f'[bench-gpu] no interpreter at {python}: run the env step first '
                         f'(--steps env) or pass --venv')
    rest = [s for s in args.steps if s != 'env']
    cmd = [python, osp.abspath(__file__), *_strip_steps(argv), '--steps', ','.join(rest),
           '--no-reexec']
    log('main', 'continuing in ' + python)
    return subprocess.call(cmd, cwd=REPO)


def _strip_steps(argv):
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        if item == '--steps':
            skip = True
            continue
        if item.startswith('--steps='):
            continue
        out.append(item)
    return out


# ---------------------------------------------------------------- helpers
def load_tool(name):
    path = osp.join(REPO, 'tools', 'analysis_tools', name)
    spec = importlib.util.spec_from_file_location('mmctx_tool_' + name[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def precision_context(device, dtype):
    """fp32: nothing; fp16 / bf16: ``torch.autocast`` on the device's type."""
    import contextlib

    import torch
    if dtype == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type,
                          dtype=dict(fp16=torch.float16, bf16=torch.bfloat16)[dtype])


def write_csv(path, rows):
    fields = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def read_jsonl(path):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_jsonl(path, row):
    with open(path, 'a') as f:
        f.write(json.dumps(row) + '\n')


# ---------------------------------------------------------------- modules
def module_plan(args):
    """(kind, shape, dtype) runs of the module table, the sweep, and the names to run."""
    if args.dry_run:
        # CPU autocast runs bf16; heads in fp32 only (the bf16 path is the blocks')
        runs = [('blocks', (1, 16, 16, 16), d) for d in ('fp32', 'bf16')]
        runs += [('heads', (1, 32, 16, 16), 'fp32')]
        sweep = ('blocks', 16, (8, 16), ('SA', 'ISA (8x8)'))
        names = args.modules or DRY_RUN_MODULES
    else:
        dtypes = ('fp32', 'fp16', 'bf16')
        runs = [('blocks', (1, 512, 128, 128), d) for d in dtypes]
        runs += [('heads', (1, 2048, 128, 128), d) for d in dtypes]
        sweep = ('blocks', 512, (32, 64, 96, 128), None)
        names = args.modules
    return runs, sweep, names


def step_modules(args, device):
    from mmctx.analysis.benchmark import BLOCK_SPECS, HEAD_SPECS, run_benchmark
    tool = load_tool('benchmark_modules.py')
    out_csv = osp.join(args.work_dir, 'modules.csv')
    runs, (sweep_kind, sweep_channels, sweep_sizes, sweep_names), names = module_plan(args)
    known = {s[0].lower() for s in BLOCK_SPECS + HEAD_SPECS}
    unknown = [n for n in names or () if n.lower() not in known]
    if unknown:
        raise SystemExit(f'[bench-gpu modules] --modules: no block or head named {unknown}; '
                         'names: ' + ', '.join(s[0] for s in BLOCK_SPECS + HEAD_SPECS))

    def specs_of(kind, chosen):
        specs = BLOCK_SPECS if kind == 'blocks' else HEAD_SPECS
        if chosen:
            specs = [s for s in specs if s[0].lower() in {c.lower() for c in chosen}]
        return specs

    jobs = [(kind, shape, dtype, spec, True) for kind, shape, dtype in runs
            for spec in specs_of(kind, names)]
    # the sweep draws the default (fused) path of each block
    sweep_jobs = [(sweep_kind, (1, sweep_channels, s, s), 'fp32', spec, False)
                  for s in sweep_sizes for spec in specs_of(sweep_kind, sweep_names or names)]
    progress = Progress('modules', len(jobs) + len(sweep_jobs))
    rows, sweep_rows = [], []
    for target, job_list in ((rows, jobs), (sweep_rows, sweep_jobs)):
        for kind, shape, dtype, spec, compare in job_list:
            try:
                with precision_context(device, dtype):
                    got = run_benchmark([spec], shape, device=device, repeat=args.repeat,
                                        compare_impl=compare)
            except Exception as exc:  # e.g. out of memory: a result, not a crash
                got = [dict(module=spec[0], impl='', input='x'.join(map(str, shape)),
                            device=device, error=f'{type(exc).__name__}: {exc}'.splitlines()[0])]
            for row in got:
                row.update(kind=kind, dtype=dtype)
            target += got
            _free(device)
            progress.update(f'{kind} {dtype} {spec[0]}')
    ok_rows = [r for r in rows if 'error' not in r]
    if ok_rows:
        print(tool.format_table(ok_rows))
    tool.plot_sweep([r for r in sweep_rows if 'error' not in r], 'gflops',
                    osp.join(args.work_dir, 'modules_sweep.png'))
    write_csv(osp.join(args.work_dir, 'modules_sweep.csv'), sweep_rows)
    write_csv(out_csv, rows)
    log('modules', f'{len(rows)} rows -> {out_csv}')


# ---------------------------------------------------------------- peers
def step_peers(args, device):
    import torch

    from mmctx.analysis import peers as peer_bench
    from mmctx.analysis.benchmark import (ATTENTION_CASES, QUICK_ATTENTION_CASES,
                                          attention_impl_sweep)
    comparisons, notes = peer_bench.select(args.peers or (DRY_RUN_PEERS if args.dry_run
                                                          else None))
    for note in notes:
        log('peers', note)
    if not comparisons:
        raise SystemExit(f'[bench-gpu peers] --peers {args.peers}: matches no comparison')
    dtypes = ((torch.float32, torch.bfloat16) if args.dry_run
              else (torch.float32, torch.float16, torch.bfloat16))
    sweep = attention_impl_sweep(QUICK_ATTENTION_CASES if args.dry_run else ATTENTION_CASES,
                                 repeat=args.repeat, dtypes=dtypes, device=device, memory=True,
                                 log=lambda m: log('peers', m))
    write_csv(osp.join(args.work_dir, 'attention_impls.csv'), sweep)
    rows = peer_bench.run_peers(comparisons, peer_bench.QUICK_SIZES if args.dry_run else None,
                                repeat=args.repeat, device=device,
                                graphs=torch.device(device).type == 'cuda',
                                log=lambda m: log('peers', m))
    out_csv = osp.join(args.work_dir, 'peers.csv')
    write_csv(out_csv, rows)
    log('peers', f'{len(rows)} rows -> {out_csv}')


def module_ratios(rows):
    """ISA / SA, GC / NL, ENL / NL for each dtype and attention path."""
    out = []
    index = {(r['module'], r['impl'], r['dtype'], r['kind']): r for r in rows if not r.get('error')}
    for num, den, source in RATIO_PAIRS:
        for (module, impl, dtype, kind), row in index.items():
            if module != num or kind != 'blocks':
                continue
            ref = index.get((den, impl, dtype, kind)) or index.get((den, '-', dtype, kind)) \
                or index.get((den, 'explicit', dtype, kind))
            if ref is None:
                continue
            ratio = {}
            for key in ('memory_mb', 'gflops', 'time_ms'):
                a, b = _num(row.get(key)), _num(ref.get(key))
                ratio[key] = a / b if a is not None and b else None
            out.append(dict(pair=f'{num} / {den}', impl=f"{impl} / {ref['impl']}", dtype=dtype,
                            memory=ratio['memory_mb'], gflops=ratio['gflops'],
                            time=ratio['time_ms'], paper=source))
    return out


def _num(value):
    if value in (None, ''):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _free(device):
    import gc

    import torch
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- cost / amp
def cost_entries(args, step='cost'):
    """The configs of the cost or AMP step, filtered by --configs (--amp-configs)."""
    from mmctx.analysis.training_cost import (DRY_RUN_AMP_ENTRIES, DRY_RUN_ENTRIES,
                                              PAPER_ENTRIES, select_entries)
    if not args.dry_run:
        entries = PAPER_ENTRIES
    else:
        entries = DRY_RUN_AMP_ENTRIES if step == 'amp' else DRY_RUN_ENTRIES
    patterns = args.amp_configs if step == 'amp' and args.amp_configs else args.configs
    try:
        return select_entries(entries, patterns)
    except ValueError as exc:
        raise SystemExit(f'[bench-gpu {step}] {exc}')


def _row_key(row):
    return f"{row['paper']}|{row['name']}"


def _out_of_budget(args, step, entries, done):
    """True once --budget-s is spent; logs the configs left for a later run."""
    if args.deadline is None or time.time() < args.deadline:
        return False
    left = [e['name'] for e in entries if _row_key(e) not in done]
    log(step, f'--budget-s {args.budget_s:g} spent: {len(left)} config(s) left for a later '
        f'run: ' + ', '.join(left))
    return True


def step_rows(args, step):
    """The cost / AMP rows measured so far (``<step>.jsonl``), in the entries' order,
    cost rows with their overheads; and the names of the entries not measured yet."""
    from mmctx.analysis.training_cost import add_overheads
    entries = cost_entries(args, step)
    order = {_row_key(e): i for i, e in enumerate(entries)}
    rows = sorted((r for r in read_jsonl(osp.join(args.work_dir, f'{step}.jsonl'))
                   if _row_key(r) in order), key=lambda r: order[_row_key(r)])
    if step == 'cost':
        rows = add_overheads(rows)
    measured = {_row_key(r) for r in rows}
    return rows, [e['name'] for e in entries if _row_key(e) not in measured]


def _write_step_csv(args, step):
    """``<step>.csv`` once every entry is measured (it marks the step done)."""
    rows, missing = step_rows(args, step)
    path = osp.join(args.work_dir, f'{step}.csv')
    if not missing:
        write_csv(path, rows)
        log(step, f'{len(rows)} configs -> {path}')
    else:
        log(step, f'{len(rows)} configs measured so far (in {step}.jsonl); {step}.csv is '
            'written once all are')
    return rows


def step_cost(args, device):
    from mmctx.analysis.training_cost import measure_cost
    partial = osp.join(args.work_dir, 'cost.jsonl')
    if args.force and osp.isfile(partial):
        os.remove(partial)
    done = {_row_key(r) for r in read_jsonl(partial)}
    entries = cost_entries(args)
    warmup = 1 if args.dry_run else 2
    progress = Progress('cost', len(entries))
    for entry in entries:
        if _row_key(entry) in done:
            progress.update(f"{entry['name']} (kept from an earlier run)")
            continue
        if _out_of_budget(args, 'cost', entries, done):
            break
        try:
            row = measure_cost(entry, device=device, iters=args.iters, warmup=warmup)
        except Exception as exc:  # out of memory, a config that does not build: a result
            row = dict(paper=entry['paper'], name=entry['name'],
                       config=osp.basename(entry['config']), device=device,
                       baseline=entry['baseline'], claim=entry['claim'],
                       error=f'{type(exc).__name__}: {exc}'.splitlines()[0][:300])
        append_jsonl(partial, row)
        done.add(_row_key(entry))
        _free(device)
        progress.update(f"{entry['paper']}: {entry['name']}"
                        + (f" train {row['train_s']:.3f} s/it" if 'train_s' in row else
                           f" FAILED {row.get('error')}"))
    _write_step_csv(args, 'cost')


def step_amp(args, device):
    from mmctx.analysis.training_cost import amp_check
    partial = osp.join(args.work_dir, 'amp.jsonl')
    if args.force and osp.isfile(partial):
        os.remove(partial)
    done = {_row_key(r) for r in read_jsonl(partial)}
    entries = cost_entries(args, 'amp')
    dtype = 'bfloat16' if args.dry_run else 'float16'
    progress = Progress('amp', len(entries))
    for entry in entries:
        if _row_key(entry) in done:
            progress.update(f"{entry['name']} (kept from an earlier run)")
            continue
        if _out_of_budget(args, 'amp', entries, done):
            break
        row = amp_check(entry, device=device, dtype=dtype)
        append_jsonl(partial, row)
        done.add(_row_key(entry))
        _free(device)
        progress.update(f"{entry['paper']}: {entry['name']} "
                        + ('ok' if row['ok'] else 'FAILED ' + row['error']))
    rows = _write_step_csv(args, 'amp')
    failed = [r['config'] for r in rows if not r['ok']]
    log('amp', f"{len(rows) - len(failed)} of {len(rows)} configs ok"
        + (f"; failing: {', '.join(failed)}" if failed else ''))


# ---------------------------------------------------------------- report
def environment_info(device):
    import torch
    info = dict(date=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
                host=platform.node(), python=platform.python_version(), torch=torch.__version__,
                cuda=torch.version.cuda or 'none', cudnn=str(torch.backends.cudnn.version()),
                device=device, device_name='CPU (dry run)', driver='none')
    try:
        import mmcv
        info['mmcv'] = mmcv.__version__
    except ImportError:
        info['mmcv'] = 'missing'
    if device.startswith('cuda'):
        info['device_name'] = torch.cuda.get_device_name(device)
        try:
            info['driver'] = subprocess.run(
                ['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                capture_output=True, text=True, timeout=30).stdout.split('\n')[0].strip()
        except (OSError, subprocess.SubprocessError):
            info['driver'] = 'unknown'
    return info


def report_name(info, dry_run):
    if dry_run:
        return 'cpu_dry-run'
    slug = re.sub(r'[^a-z0-9]+', '-', info['device_name'].lower()).strip('-')
    return f'cuda_{slug}'


def _cell(value, fmt='{:.2f}'):
    if value in (None, ''):
        return ''
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    number = _num(value)
    if number is None:
        return str(value).replace('|', '/')
    return fmt.format(number)


def _pct(value):
    number = _num(value)
    return '' if number is None else f'{number:+.1f} %'


def _table(header, rows):
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
    return '\n'.join(lines)


def read_csv(path):
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _report_rows(args, step):
    """A step's rows as the report reads them (strings, as from a csv): ``<step>.csv``,
    else the rows measured so far (written to ``<step>_partial.csv``); and the names of
    the entries not measured yet."""
    path = osp.join(args.work_dir, f'{step}.csv')
    if osp.isfile(path):
        return read_csv(path), []
    if not osp.isfile(osp.join(args.work_dir, f'{step}.jsonl')):
        return [], []
    rows, missing = step_rows(args, step)
    if not rows:
        return [], []
    path = osp.join(args.work_dir, f'{step}_partial.csv')
    write_csv(path, rows)
    return read_csv(path), missing


def _not_measured(names):
    if not names:
        return []
    return [f'Not measured yet ({len(names)}; the run\'s --budget-s was spent, a later run '
            'resumes here): ' + ', '.join(names) + '.', '']


def environment_path(args):
    return osp.join(args.work_dir, 'environment.json')


#: the peers report's optional column pairs: ``ours_<kind>_ms`` / ``peer_<kind>_ms``
#: (run_peers on CUDA) and the sentence that says what they are
_PEER_EXTRA_COLUMNS = (
    ('host', 'Host ms: the time until the call returned, before the device was synchronised '
             '(Python, dispatch, launches); a call whose host ms is close to its ms is bound '
             'by the host.'),
    ('graph', 'Graph ms: the call replayed from a CUDA graph, the kernels alone.'),
)


def _peers_lines(peers, sweep):
    """The report's peers section: every row, and the sweep against impl='auto'."""
    lines = []
    if peers:
        # CUDA rows' optional pairs (mmctx, peer), shown where rows have them
        shown = [(kind, text) for kind, text in _PEER_EXTRA_COLUMNS
                 if any(r.get(f'ours_{kind}_ms') not in (None, '') for r in peers)]
        lines += ['## mmctx beside its peers (fp32)', '',
                  'Outputs checked equal in float64 before timing; interleaved, median time '
                  '(ms) and allocator peak (MiB); ratios mmctx / peer (below 1: mmctx faster '
                  'or leaner). Protocol: docs/benchmarks/peers_cpu.md.'
                  + ''.join(' ' + text for _, text in shown), '',
                  _table(['block', 'peer', 'input', 'pass', 'mmctx ms', 'peer ms', 'time']
                         + [f'{who} {kind} ms' for kind, _ in shown for who in ('mmctx', 'peer')]
                         + ['mmctx MiB', 'peer MiB', 'memory', 'note'],
                         [[r['block'], r['peer'], r['input'], r['pass'],
                           _cell(r.get('ours_ms')), _cell(r.get('peer_ms')),
                           _cell(r.get('time_ratio'))]
                          + [_cell(r.get(f'{who}_{kind}_ms'))
                             for kind, _ in shown for who in ('ours', 'peer')]
                          + [_cell(r.get('ours_mb'), '{:.4g}'),
                             _cell(r.get('peer_mb'), '{:.4g}'),
                             _cell(r.get('memory_ratio')), _cell(r.get('note'))]
                          for r in peers]), '']
    if sweep:
        hits = sum(r['auto_is_fastest'] == 'True' for r in sweep)
        lines += ["## Softmax attention: fused against explicit, and `impl='auto'`", '',
                  f"`resolve_impl` names the faster path in {hits} of {len(sweep)} rows.", '',
                  _table(['case', 'dtype', 'pass', 'fused ms', 'explicit ms', 'fused MiB',
                          'explicit MiB', 'auto', 'fastest'],
                         [[r['case'], r['dtype'], r['pass'], _cell(r['fused_ms'], '{:.3f}'),
                           _cell(r['explicit_ms'], '{:.3f}'),
                           _cell(r.get('fused_mb'), '{:.1f}'),
                           _cell(r.get('explicit_mb'), '{:.1f}'), r['auto'],
                           r['fastest']] for r in sweep]), '']
    return lines


def write_report(args, device):
    """The report of --work-dir's results; the machine named is the one that measured
    them (environment.json, written when a step runs), else this one."""
    if osp.isfile(environment_path(args)):
        with open(environment_path(args)) as f:
            info = json.load(f)
    else:
        info = environment_info(device)
    modules = read_csv(osp.join(args.work_dir, 'modules.csv'))
    cost, cost_left = _report_rows(args, 'cost')
    amp, amp_left = _report_rows(args, 'amp')
    peers = read_csv(osp.join(args.work_dir, 'peers.csv'))
    sweep = read_csv(osp.join(args.work_dir, 'attention_impls.csv'))
    name = report_name(info, args.dry_run)
    os.makedirs(args.report_dir, exist_ok=True)
    md_path = osp.join(args.report_dir, name + '.md')
    lines = [f"# mmctx on {info['device_name']}", '',
             'Written by `make bench-gpu`' + (' DRY_RUN=1 (CPU, tiny sizes: the numbers only show '
                                              'that every step runs)' if args.dry_run else '')
             + ' (tools/analysis_tools/bench_gpu.py); how to read it: docs/benchmarks/README.md.',
             '', _table(['date', 'device', 'driver', 'torch', 'CUDA', 'cuDNN', 'mmcv', 'Python'],
                        [[info['date'], info['device_name'], info['driver'], info['torch'],
                          info['cuda'], info['cudnn'], info['mmcv'], info['python']]]), '']
    if modules:
        lines += ['## Blocks and heads in inference (OCNet Table 4 / Fig. 4 protocol)', '',
                  'Peak memory (MiB, allocator peak), GFLOPs (2 x multiply-adds, attention '
                  'products included: OCNet Table 4\'s unit), median time; fp16 / bf16 '
                  'under autocast. The paper columns: OCNet Table 4, one V100, PyTorch '
                  '0.4.1, fp32.', '']
        body = []
        for r in modules:
            body.append([r.get('kind', ''), r['module'], r.get('impl', ''), r.get('dtype', ''),
                         r.get('input', ''), _cell(r.get('memory_mb'), '{:.4g}'),
                         _cell(r.get('gflops'), '{:.4g}'), _cell(r.get('time_ms'), '{:.4g}'),
                         _cell(r.get('speedup')), _cell(r.get('paper_memory_mb'), '{:.0f}'),
                         _cell(r.get('paper_gflops'), '{:.0f}'),
                         _cell(r.get('paper_time_ms'), '{:.0f}'), r.get('error', '')])
        lines += [_table(['kind', 'module', 'impl', 'dtype', 'input', 'memory MiB', 'GFLOPs',
                          'time ms', 'fused speed-up', 'paper MB', 'paper GFLOPs', 'paper ms',
                          'error'], body), '']
        ratios = module_ratios(modules)
        if ratios:
            lines += ['Ratios of blocks (ours) beside what the papers report:', '',
                      _table(['pair', 'impl', 'dtype', 'memory', 'GFLOPs', 'time', 'paper'],
                             [[r['pair'], r['impl'], r['dtype'], _cell(r['memory'], '{:.3f}'),
                               _cell(r['gflops'], '{:.3f}'), _cell(r['time'], '{:.3f}'),
                               r['paper']] for r in ratios]), '']
        if osp.isfile(osp.join(args.work_dir, 'modules_sweep.png')):
            png = name + '_sweep.png'
            if osp.abspath(args.report_dir) != osp.abspath(args.work_dir):
                import shutil
                shutil.copy(osp.join(args.work_dir, 'modules_sweep.png'),
                            osp.join(args.report_dir, png))
            else:
                png = 'modules_sweep.png'
            lines += [f'GFLOPs against input size (OCNet Fig. 3): ![sweep]({png})', '']
    lines += _peers_lines(peers, sweep)
    if cost:
        lines += ['## Training and inference cost per paper', '',
                  'Real configs, synthetic batches of the papers\' input size; train = '
                  '`train_step` (forward, backward, optimizer step), inference = `test_step` '
                  '(segmentors: one forward of the crop). Overheads over the paper\'s baseline '
                  'row above them.', '']
        body = []
        for r in cost:
            body.append([r['paper'], r['name'], r.get('input', ''), _cell(r.get('params_m')),
                         _cell(r.get('train_s'), '{:.3f}'), _pct(r.get('train_s_overhead')),
                         _cell(r.get('train_gb')), _pct(r.get('train_gb_overhead')),
                         _cell(r.get('infer_s'), '{:.3f}'), _pct(r.get('infer_s_overhead')),
                         _cell(r.get('infer_gb')), _pct(r.get('infer_gb_overhead')),
                         r.get('claim', ''), r.get('error', '')])
        lines += [_table(['paper', 'config', 'input', 'params M', 'train s/it', '+%', 'train GB',
                          '+%', 'infer s/it', '+%', 'infer GB', '+%', 'paper says', 'error'],
                         body), '']
        lines += _not_measured(cost_left)
    if amp:
        failed = [r for r in amp if r['ok'] != 'True']
        lines += ['## Mixed precision: one training iteration per config', '',
                  f"{len(amp) - len(failed)} of {len(amp)} configs give a finite loss and finite "
                  f"unscaled gradients ({amp[0]['dtype']} autocast"
                  + (', dynamic GradScaler' if amp[0]['dtype'] == 'float16' else '') + ').'
                  + (' Failing: ' + ', '.join(r['config'] for r in failed) + '.' if failed else ''),
                  '', _table(['paper', 'config', 'dtype', 'ok', 'loss', 'iterations',
                              'loss scale', 'error'],
                             [[r['paper'], r['config'], r['dtype'], _cell(r['ok'] == 'True'),
                               _cell(r.get('loss'), '{:.3f}'), r.get('tries', ''),
                               _cell(r.get('loss_scale'), '{:.0f}'), r.get('error', '')]
                              for r in amp]), '']
        lines += _not_measured(amp_left)
    with open(md_path, 'w') as f:
        f.write('\n'.join(lines))
    rows = [dict(table='environment', **info)]
    rows += [dict(table='modules', **r) for r in modules]
    rows += [dict(table='peers', **r) for r in peers]
    rows += [dict(table='attention', **r) for r in sweep]
    rows += [dict(table='cost', **r) for r in cost]
    rows += [dict(table='amp', **r) for r in amp]
    write_csv(osp.join(args.report_dir, name + '.csv'), rows)
    log('report', f'{md_path} and {name}.csv')
    return md_path


# ---------------------------------------------------------------- main
def step_done(args, step):
    return osp.isfile(osp.join(args.work_dir, f'{step}.csv'))


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    if args.report_only:
        if not osp.isfile(environment_path(args)):
            raise SystemExit(f'[bench-gpu] --report-only: no {environment_path(args)}: the '
                             'work dir holds no results of a measuring run')
        write_report(args, 'cpu' if args.dry_run else 'cuda')
        return 0
    start = time.time()
    if 'env' in args.steps:
        step_env(args)
    rest = [s for s in args.steps if s != 'env']
    if not rest:
        return 0
    if not args.dry_run and not args.no_reexec:
        return reexec_in_venv(args, argv)
    try:
        import torch

        from mmctx.utils import register_all_modules
    except ImportError as exc:
        raise SystemExit(f'[bench-gpu] {exc}: this interpreter ({sys.executable}) has no mmctx '
                         'environment (make env for the dry run; --steps env for CUDA)')
    register_all_modules()
    if args.dry_run:
        device = 'cpu'
    else:
        if not torch.cuda.is_available():
            raise SystemExit('[bench-gpu] torch sees no CUDA device; on a machine without a GPU '
                             'run `make bench-gpu DRY_RUN=1`')
        device = 'cuda'
    functions = dict(modules=step_modules, peers=step_peers, cost=step_cost, amp=step_amp)
    for step in rest:
        if step_done(args, step) and not args.force:
            log(step, f'results exist in {args.work_dir} (FORCE=1 re-runs): skipped')
            continue
        with open(environment_path(args), 'w') as f:
            json.dump(environment_info(device), f, indent=1)
        t0 = time.time()
        log(step, 'start')
        functions[step](args, device)
        log(step, f'done in {time.time() - t0:.0f} s')
    write_report(args, device)
    log('main', f'all steps done in {time.time() - start:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
