"""``make bench-gpu``: the CUDA set-up plan, the training-cost helpers and the CPU dry run.

No GPU here: ``tools/setup_env_cuda.sh --plan`` is run with faked
``nvidia-smi`` / torch / nvcc answers, and ``tools/analysis_tools/bench_gpu.py
--dry-run`` runs every step's code on the CPU at tiny sizes, as
``make bench-gpu DRY_RUN=1`` does.
"""
import csv
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SETUP = osp.join(REPO, 'tools', 'setup_env_cuda.sh')
BENCH = osp.join(REPO, 'tools', 'analysis_tools', 'bench_gpu.py')


def plan(tmp_path, **fakes):
    """Run the set-up script's --plan with fakes; returns (exit code, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('MMCTX_')}
    env.update(MMCTX_CUDA_VENV=str(tmp_path / 'venv-cuda'),
               MMCTX_WHEEL_CACHE=str(tmp_path / 'wheels'), MAX_JOBS='16')
    env.update({f'MMCTX_{k.upper()}': v for k, v in fakes.items()})
    proc = subprocess.run(['bash', SETUP, '--plan'], env=env, capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


# ---------------------------------------------------------------- set-up plan
def test_plan_arch_list_and_pypi_nvcc_for_cuda13(tmp_path):
    rc, out = plan(tmp_path, fake_compute_cap='9.0\n8.0\n9.0',
                   fake_torch='2.13.0 13.0', fake_nvcc='none')
    assert rc == 0, out
    # unique, sorted capabilities of all GPUs
    assert 'TORCH_CUDA_ARCH_LIST=8.0;9.0' in out
    # a CUDA torch outside the venv is reused: the venv sees its site-packages
    assert 'seeing its site-packages through a .pth (reusing its torch 2.13.0, CUDA 13.0)' in out
    # no nvcc: PyPI's CUDA 13 packages of torch's exact CUDA version (no -cu13
    # suffix; nvcc's C runtime headers and NVVM are packages of their own)
    for pkg in ('nvidia-cuda-nvcc==13.0.*', 'nvidia-cuda-crt==13.0.*', 'nvidia-nvvm==13.0.*',
                'nvidia-cuda-runtime==13.0.*', 'nvidia-cuda-cccl==13.0.*'):
        assert pkg in out
    # the wheel cache key names Python, torch, CUDA and the arch list; all cores build
    key = 'py311-torch2.13.0-cu13.0-sm80_90'
    assert f'build mmcv 2.1.0 wheel into {tmp_path}/wheels/cuda/{key}' in out
    assert 'FORCE_CUDA=1' in out and 'MAX_JOBS=16' in out
    assert 'torch==2.13.0 ' in out   # the stack keeps mmcv's torch


def test_plan_nvcc_for_cuda12_and_installed_nvcc(tmp_path):
    # PyPI's CUDA 12 nvcc package has no nvcc: Debian's toolkit is the fallback
    rc, out = plan(tmp_path, fake_compute_cap='9.0', fake_torch='2.8.0+cu128 12.8',
                   fake_nvcc='none')
    assert rc == 0, out
    assert 'PyPI has no nvcc before CUDA 13: apt-get install nvidia-cuda-toolkit' in out
    assert 'nvidia-cuda-nvcc' not in out
    # an installed nvcc of the same CUDA major is used as it is
    rc, out = plan(tmp_path, fake_compute_cap='9.0', fake_torch='2.13.0 12.8',
                   fake_nvcc='/opt/cuda/bin/nvcc 12.6')
    assert rc == 0 and 'nvcc: use /opt/cuda/bin/nvcc (release 12.6), CUDA_HOME=/opt/cuda' in out
    # ... but not one of another major (torch refuses to build with it)
    rc, out = plan(tmp_path, fake_compute_cap='9.0', fake_torch='2.13.0 13.0',
                   fake_nvcc='/opt/cuda/bin/nvcc 12.8')
    assert rc == 0 and 'nvidia-cuda-nvcc==13.0.*' in out and '/opt/cuda' not in out


def test_plan_installs_torch_when_none_is_reusable(tmp_path):
    # a CPU build (our development machines') is not reused
    rc, out = plan(tmp_path, fake_compute_cap='8.6', fake_torch='2.13.0+cpu none')
    assert rc == 0, out
    assert 'is a CPU build' in out and "pip install 'torch==2.13.0'" in out
    # nor a CUDA build newer than the driver runs
    rc, out = plan(tmp_path, fake_compute_cap='8.6', fake_torch='2.13.0 13.0',
                   fake_driver_cuda='12.4')
    assert rc == 0 and 'the driver supports CUDA 12.4, torch needs CUDA 13.0' in out
    # MMCTX_TORCH_SPEC chooses the torch to install
    rc, out = plan(tmp_path, fake_compute_cap='8.6', fake_torch='1.13.1 11.7',
                   torch_spec='torch==2.4.1')
    assert rc == 0 and 'torch 1.13.1 < 2.0' in out and "pip install 'torch==2.4.1'" in out


def test_plan_finds_the_cached_wheel(tmp_path):
    cache = tmp_path / 'wheels' / 'cuda' / 'py311-torch2.13.0-cu13.0-sm90'
    cache.mkdir(parents=True)
    wheel = cache / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.write_bytes(b'')
    rc, out = plan(tmp_path, fake_compute_cap='9.0', fake_torch='2.13.0 13.0')
    assert rc == 0 and f'mmcv: cached wheel {wheel}' in out
    # another arch is another key: no cached wheel for it
    rc, out = plan(tmp_path, fake_compute_cap='8.0', fake_torch='2.13.0 13.0')
    assert rc == 0 and 'cached wheel' not in out and '-sm80' in out


def test_plan_refuses_bad_or_missing_compute_capability(tmp_path):
    rc, out = plan(tmp_path, fake_compute_cap='sm_90')
    assert rc == 1 and "printed 'sm_90', not compute capabilities" in out
    rc, out = plan(tmp_path, fake_compute_cap='9.0', cuda_arch='9.0;ninety')
    assert rc == 1 and "MMCTX_CUDA_ARCH='9.0;ninety'" in out
    # MMCTX_CUDA_ARCH overrides the GPUs' own
    rc, out = plan(tmp_path, fake_compute_cap='9.0', cuda_arch='8.0,9.0', fake_torch='2.13.0 none')
    assert rc == 0 and 'TORCH_CUDA_ARCH_LIST=8.0;9.0' in out
    if shutil.which('nvidia-smi') is None:
        rc, out = plan(tmp_path)
        assert rc == 1 and 'no NVIDIA GPU found' in out


def test_plan_changes_nothing(tmp_path):
    rc, out = plan(tmp_path, fake_compute_cap='9.0', fake_torch='2.13.0+cpu none')
    assert rc == 0, out
    assert not (tmp_path / 'venv-cuda').exists() and not (tmp_path / 'wheels').exists()


# ---------------------------------------------------------------- training-cost helpers
def test_strip_pretrained_removes_only_weight_loading_inits():
    from mmctx.analysis.training_cost import strip_pretrained
    cfg = dict(
        pretrained='open-mmlab://resnet101_v1c',
        backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
        neck=dict(init_cfg=[dict(type='Xavier', layer='Conv2d'),
                            dict(type='BottleneckAttentionInit', checkpoint='x.pth')]),
        head=dict(init_cfg=dict(type='Normal', std=0.01)),
        plugins=[dict(cfg=dict(init_cfg=dict(type='Pretrained', checkpoint='y.pth')))])
    assert strip_pretrained(cfg) == 4
    assert cfg['pretrained'] is None and cfg['backbone']['init_cfg'] is None
    assert cfg['neck']['init_cfg'] == [dict(type='Xavier', layer='Conv2d')]
    assert cfg['head']['init_cfg'] == dict(type='Normal', std=0.01)
    assert cfg['plugins'][0]['cfg']['init_cfg'] is None


def test_synthetic_batches_follow_the_task_conventions():
    from mmctx.analysis.training_cost import synthetic_batch

    class Det(torch.nn.Module):
        roi_head = type('R', (), {'with_mask': True})()

    class Seg(torch.nn.Module):
        decode_head = None

    det = synthetic_batch(Det(), (60, 80), 2, num_classes=3, num_objects=5)
    assert len(det['inputs']) == 2 and det['inputs'][0].shape == (3, 60, 80)
    assert det['inputs'][0].dtype == torch.uint8
    inst = det['data_samples'][0].gt_instances
    boxes = inst.bboxes
    assert boxes.shape == (5, 4) and (boxes[:, 2:] > boxes[:, :2]).all()
    assert (boxes[:, [0, 2]] >= 0).all() and (boxes[:, [0, 2]] <= 80).all()
    assert (boxes[:, [1, 3]] >= 0).all() and (boxes[:, [1, 3]] <= 60).all()
    assert set(inst.labels.tolist()) <= {0, 1, 2}
    # every mask lies inside its box and is not empty
    masks = inst.masks.to_ndarray()
    assert masks.shape == (5, 60, 80)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.tolist()):
        ys, xs = np.nonzero(mask)
        assert len(ys) > 0
        assert xs.min() >= int(x1) and xs.max() <= x2 and ys.min() >= int(y1) and ys.max() <= y2
    assert det['data_samples'][0].metainfo['img_shape'] == (60, 80)

    seg = synthetic_batch(Seg(), (32, 48), 1, num_classes=19)
    label = seg['data_samples'][0].gt_sem_seg.data
    assert label.shape == (1, 32, 48) and label.dtype == torch.int64
    assert 0 <= int(label.min()) and int(label.max()) < 19
    with pytest.raises(ValueError, match='num_classes must be >= 1'):
        synthetic_batch(Seg(), (8, 8), 1, num_classes=0)


def test_overheads_are_relative_to_the_papers_baseline():
    from mmctx.analysis.training_cost import add_overheads
    rows = add_overheads([
        dict(paper='A', baseline=True, train_s=2.0, train_gb=4.0, infer_s=1.0, infer_gb=None),
        dict(paper='A', baseline=False, train_s=2.5, train_gb=3.0, infer_s=1.1, infer_gb=None),
        dict(paper='B', baseline=True, train_s=1.0, train_gb=1.0, infer_s=1.0, infer_gb=1.0),
        dict(paper='A', baseline=False, error='out of memory'),
    ])
    assert rows[0]['train_s_overhead'] == 0.0
    assert rows[1]['train_s_overhead'] == pytest.approx(25.0)
    assert rows[1]['train_gb_overhead'] == pytest.approx(-25.0)
    assert rows[1]['infer_s_overhead'] == pytest.approx(10.0)
    assert rows[1]['infer_gb_overhead'] is None        # CPU: no peak memory
    assert rows[3]['train_s_overhead'] is None           # a failed row


def test_time_call_and_entry_selection():
    from mmctx.analysis.training_cost import PAPER_ENTRIES, select_entries, time_call
    calls = []
    seconds, peak = time_call(lambda: calls.append(1), 'cpu', iters=3, warmup=2)
    assert len(calls) == 5 and seconds >= 0 and peak is None
    with pytest.raises(ValueError, match='iters must be >= 1'):
        time_call(lambda: None, 'cpu', iters=0)
    assert {e['paper'] for e in select_entries(PAPER_ENTRIES, ['ocnet'])} == {'OCNet'}
    with pytest.raises(ValueError, match="--configs \\['no-such'\\] matches no entry"):
        select_entries(PAPER_ENTRIES, ['no-such'])


def test_every_paper_entry_names_a_config_and_a_baseline():
    from mmctx.analysis.training_cost import PAPER_ENTRIES
    for entry in PAPER_ENTRIES:
        assert osp.isfile(osp.join(REPO, entry['config'])), entry['config']
        assert len(entry['size']) == 2 and entry['batch'] >= 1
    # each paper's first row is its baseline, so every overhead has a reference
    first = {}
    for entry in PAPER_ENTRIES:
        first.setdefault(entry['paper'], entry)
    assert all(e['baseline'] for e in first.values())
    assert {e['paper'] for e in PAPER_ENTRIES} == {'GCNet', 'GCNL', 'GSA', 'ENL', 'OCNet'}


# ---------------------------------------------------------------- the dry run
def make_command(*variables):
    """The bench_gpu.py command line that ``make bench-gpu`` would run."""
    out = subprocess.run(['make', '-n', '-s', '-C', REPO, 'bench-gpu', *variables],
                         capture_output=True, text=True, check=True).stdout
    line = ' '.join(out.replace('\\\n', ' ').split('\n')[-2:]).split()
    return line[line.index('tools/analysis_tools/bench_gpu.py') + 1:], out


@pytest.mark.skipif(shutil.which('make') is None, reason='needs make')
def test_make_target_wiring():
    args, out = make_command('DRY_RUN=1', 'STEPS=cost,amp')
    assert '--dry-run' in args and args[args.index('--steps') + 1] == 'cost,amp'
    assert '.venv/bin/python' in out           # the CPU environment
    args, out = make_command('FORCE=1')
    assert '--dry-run' not in args and '--force' in args
    assert args[args.index('--steps') + 1] == 'env,modules,peers,cost,amp'
    assert 'python3' in out and '.venv-cuda' in out


def test_dry_run_runs_every_step_and_resumes(tmp_path):
    """The dry run's code paths on a reduced set: two blocks, the cost of a detector with
    masks and of a segmentor, AMP of a detector with self-attention."""
    work = tmp_path / 'bench'
    cmd = [sys.executable, BENCH, '--dry-run', '--work-dir', str(work),
           '--configs', 'mask-rcnn_r50-syncbn_fpn', 'baseoc-isa_r50',
           '--amp-configs', 'retinanet_r50_fpn-gsa', '--modules', 'SA', 'ISA (8x8)']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]

    # env: the set-up plan with a faked GPU, nothing installed
    env_log = (work / 'env.log').read_text()
    assert 'plan: TORCH_CUDA_ARCH_LIST=9.0' in env_log and 'plan: mmcv:' in env_log

    def rows(name):
        with open(work / name) as f:
            return list(csv.DictReader(f))

    # modules: fp32 and bf16 autocast, fused and explicit paths, and the ratio table
    modules = rows('modules.csv')
    assert {r['dtype'] for r in modules} == {'fp32', 'bf16'}
    by = {(r['module'], r['impl'], r['dtype']): r for r in modules}
    sa, isa = by[('SA', 'explicit', 'fp32')], by[('ISA (8x8)', 'explicit', 'fp32')]
    assert float(isa['gflops']) < float(sa['gflops'])
    assert ('SA', 'fused', 'bf16') in by and float(by[('SA', 'fused', 'bf16')]['time_ms']) > 0
    assert (work / 'modules_sweep.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

    # peers: the dry run's two comparisons at the quick sizes, outputs checked
    # equal, both passes; the attention sweep in fp32 and bf16 beside the rule
    peers = rows('peers.csv')
    assert {(r['peer'], r['pass']) for r in peers} == {
        (p, s) for p in ('mmcv ContextBlock', 'mmseg ISAHead relations')
        for s in ('forward', 'forward_backward')}
    for row in peers:
        assert float(row['check_rel']) <= 1e-5 and float(row['time_ratio']) > 0, row
        assert float(row['ours_mb']) > 0 and float(row['peer_mb']) > 0
    sweep = rows('attention_impls.csv')
    assert {r['dtype'] for r in sweep} == {'float32', 'bfloat16'}
    assert len(sweep) == 2 * 2 * 2  # quick cases x dtypes x passes
    for row in sweep:
        assert row['auto_is_fastest'] == str(row['auto'] == row['fastest'])

    # cost: a train and an inference time per config, CPU memory unknown
    cost = rows('cost.csv')
    assert [r['config'] for r in cost] == ['mask-rcnn_r50-syncbn_fpn_1x_coco.py',
                                          'baseoc-isa_r50-d8_4xb4-150k_ade20k-520x520.py']
    for row in cost:
        assert not row.get('error'), row
        assert float(row['train_s']) > 0 and float(row['infer_s']) > 0
        assert np.isfinite(float(row['loss'])) and row['train_gb'] == ''
    assert float(cost[0]['params_m']) == pytest.approx(44.4, abs=0.1)   # GCNet Table 5
    assert float(cost[0]['train_s_overhead']) == 0.0

    # amp: bf16 autocast iterations with finite loss and gradients
    amp = rows('amp.csv')
    assert [r['config'] for r in amp] == ['retinanet_r50_fpn-gsa_adam-sgd-1x_coco-600.py']
    for row in amp:
        assert row['dtype'] == 'bfloat16' and row['ok'] == 'True', row
        assert np.isfinite(float(row['loss'])) and row['tries'] == '1'


    # the report: into the work dir, never docs/
    report = (work / 'cpu_dry-run.md').read_text()
    for title in ('## Blocks and heads', '## mmctx beside its peers', '## Softmax attention',
                  '## Training and inference cost', '## Mixed precision'):
        assert title in report
    hits = sum(r['auto_is_fastest'] == 'True' for r in sweep)
    assert f'names the faster path in {hits} of 8 rows' in report
    assert 'ISA (8x8) / SA' in report and 'OCNet Fig. 4' in report
    with open(work / 'cpu_dry-run.csv') as f:
        tables = {r['table'] for r in csv.DictReader(f)}
    assert tables == {'environment', 'modules', 'peers', 'attention', 'cost', 'amp'}

    # resumable: finished steps are skipped; a lost cost.csv is rebuilt from the
    # rows kept per config, without measuring again
    (work / 'cost.csv').unlink()
    proc = subprocess.run([*cmd, '--steps', 'modules,peers,cost,amp'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'results exist' in out and 'kept from an earlier run' in out
    assert [r['train_s'] for r in rows('cost.csv')] == [r['train_s'] for r in cost]

    # a spent --budget-s: the rows measured stay, the report names the config left, and
    # cost.csv (the step's "done" mark) waits until every config has its row
    (work / 'cost.csv').unlink()
    budget = [sys.executable, BENCH, '--dry-run', '--work-dir', str(work), '--steps', 'cost',
              '--configs', 'mask-rcnn_r50-syncbn_fpn', 'baseoc-isa_r50', 'gcb-r16-c3-c5',
              '--budget-s', '0.001']
    proc = subprocess.run(budget, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert '1 config(s) left for a later run: +GC r16 (c3-c5)' in out
    assert not (work / 'cost.csv').exists()
    assert [r['train_s'] for r in rows('cost_partial.csv')] == [r['train_s'] for r in cost]
    report = (work / 'cpu_dry-run.md').read_text()
    assert 'Not measured yet (1;' in report and '+GC r16 (c3-c5).' in report

    # --report-only: no measuring, the machine named is the one environment.json records
    (work / 'cpu_dry-run.md').unlink()
    info = json.loads((work / 'environment.json').read_text())
    (work / 'environment.json').write_text(json.dumps(dict(info, device_name='Test GPU')))
    proc = subprocess.run([*budget[:-2], '--report-only'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    report = (work / 'cpu_dry-run.md').read_text()
    assert report.startswith('# mmctx on Test GPU') and 'Mask R-CNN R-50 (baseline)' in report
    proc = subprocess.run([sys.executable, BENCH, '--report-only', '--work-dir',
                           str(tmp_path / 'empty')], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0 and 'holds no results of a measuring run' in proc.stderr


def test_bad_steps_are_refused(capsys):
    from importlib.util import module_from_spec, spec_from_file_location
    spec = spec_from_file_location('bench_gpu_tool', BENCH)
    tool = module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit):
        tool.parse_args(['--steps', 'env,train'])
    assert "unknown step(s) ['train']" in capsys.readouterr().err


def test_the_peers_report_shows_host_and_graph_times_where_rows_have_them():
    """CUDA rows carry the host's share of each call and its time replayed
    from a CUDA graph (run_peers on CUDA): the report gives each two columns;
    CPU rows have none, and the table keeps its columns."""
    from importlib.util import module_from_spec, spec_from_file_location
    spec = spec_from_file_location('bench_gpu_tool', BENCH)
    tool = module_from_spec(spec)
    spec.loader.exec_module(tool)
    row = dict(block='NL', peer='timm NonLocalAttn', input='1x256x64x64', pass_='forward',
               ours_ms='0.53', peer_ms='0.45', time_ratio='1.18', ours_mb='130',
               peer_mb='130', memory_ratio='1.0', note='')
    row['pass'] = row.pop('pass_')
    cpu = '\n'.join(tool._peers_lines([row], []))
    cuda = '\n'.join(tool._peers_lines([dict(row, ours_host_ms='0.51', peer_host_ms='0.40')],
                                        []))
    assert 'host ms' not in cpu and '| mmctx ms | peer ms | time | mmctx MiB |' in cpu
    assert '| time | mmctx host ms | peer host ms | mmctx MiB |' in cuda
    assert '| 0.53 | 0.45 | 1.18 | 0.51 | 0.40 | 130 |' in cuda
    graphs = '\n'.join(tool._peers_lines([dict(row, ours_host_ms='0.51', peer_host_ms='0.40',
                                               ours_graph_ms='0.19', peer_graph_ms='0.23')],
                                          []))
    assert 'kernels alone' in graphs and 'kernels alone' not in cuda
    assert '| peer host ms | mmctx graph ms | peer graph ms | mmctx MiB |' in graphs
    assert '| 1.18 | 0.51 | 0.40 | 0.19 | 0.23 | 130 |' in graphs


def test_offline_runner_refuses_a_wheelhouse_without_the_mmcv_sdist(tmp_path):
    script = osp.join(REPO, 'tools', 'bench_gpu_offline.sh')
    proc = subprocess.run(['bash', script], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and 'usage: bash tools/bench_gpu_offline.sh WHEELHOUSE' in proc.stderr
    proc = subprocess.run(['bash', script, str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert f'no mmcv-2.1.0.tar.gz in {tmp_path}' in proc.stdout + proc.stderr
