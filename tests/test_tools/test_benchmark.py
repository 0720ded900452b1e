"""benchmark_modules: the OCNet Table 4 protocol (Yuan et al.), its heads and figures."""
import copy
import csv
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm

from mmctx.analysis.benchmark import HEAD_SPECS, PAPER_TABLE4, build_entry, table4_notes
from mmctx.analysis.complexity import count_macs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
OCNET = osp.join(REPO, 'configs', 'ocnet')
MMSEG_CONFIGS = osp.join(osp.dirname(__import__('mmseg').__file__), '.mim', 'configs')


def test_block_benchmark_writes_table_and_isa_beats_sa_on_memory(tmp_path, tool, capsys):
    rows = tool('analysis_tools/benchmark_modules.py').main([
        '--kind', 'blocks', '--only', 'SA', 'ISA', '--channels', '16', '--size', '64', '64',
        '--repeat', '1', '--out-dir', str(tmp_path)])
    by = {(r['module'], r['impl']): r for r in rows}
    sa, isa = by[('SA', 'explicit')], by[('ISA (8x8)', 'explicit')]
    # dense SA holds a (64*64)^2 float matrix; ISA's groups are 1/64 of it
    assert sa['memory_mb'] >= (64 * 64)**2 * 4 / 2**20
    assert isa['memory_mb'] < sa['memory_mb'] / 10
    assert isa['gflops'] < sa['gflops']
    assert by[('SA', 'fused')]['speedup'] > 0
    assert 'memory_mb' in capsys.readouterr().out
    with open(osp.join(tmp_path, 'benchmark.csv')) as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert len(json.load(open(osp.join(tmp_path, 'benchmark.json')))) == len(rows)


def test_head_sweep_draws_png(tmp_path, tool):
    rows = tool('analysis_tools/benchmark_modules.py').main([
        '--kind', 'heads', '--only', 'Base-OC', '--channels', '32', '--sizes', '16', '24',
        '--repeat', '1', '--plot-metric', 'gflops', '--out-dir', str(tmp_path)])
    assert {r['input'] for r in rows} == {'1x32x16x16', '1x32x24x24'}
    png = osp.join(tmp_path, 'sweep.png')
    with open(png, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    # FLOPs grow with the input
    flops = {r['input']: r['gflops'] for r in rows if r['module'] == 'Base-OC (SA)'}
    assert flops['1x32x24x24'] > flops['1x32x16x16']


def test_unknown_entry_is_refused(tool):
    with pytest.raises(SystemExit, match='matches no'):
        tool('analysis_tools/benchmark_modules.py').main(['--only', 'nothing-like-this'])


# Each Table 4 row of the benchmark and the config in configs/ocnet/ that trains it
# (Cityscapes, dilated ResNet-101); DANet has no OCNet config: mmseg's own.
TABLE4_CONFIGS = {
    'PPM': osp.join(OCNET, 'ppm_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'ASPP': osp.join(OCNET, 'aspp_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'DANet': osp.join(MMSEG_CONFIGS, 'danet', 'danet_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    'RCCA': osp.join(OCNET, 'rcca_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'CGNL': osp.join(OCNET, 'cgnl_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'Efficient Attention':
    osp.join(OCNET, 'efficient-attention_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'Base-OC (SA)': osp.join(OCNET, 'baseoc-sa_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'Base-OC (ISA)': osp.join(OCNET, 'baseoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'Pyramid-OC (SA)': osp.join(OCNET, 'pyramidoc-sa_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'Pyramid-OC (ISA)': osp.join(OCNET, 'pyramidoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'ASP-OC (SA)': osp.join(OCNET, 'aspoc-sa_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
    'ASP-OC (ISA)': osp.join(OCNET, 'aspoc-isa_r101-d8_4xb2-60k_cityscapes-512x1024.py'),
}


def config_head(path):
    """The config's decode head, built by mmseg's MODELS, SyncBN reverted, fed one map."""
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    head = copy.deepcopy(Config.fromfile(path).model.decode_head)
    head.in_index = 0
    # whatever scope an earlier test in this process left as the default
    with DefaultScope.overwrite_default_scope('mmseg'):
        return revert_sync_batchnorm(MODELS.build(head)).eval()


def settings(module):
    """Every submodule's class and scalar settings (channels, kernel, dilation,
    groups, ISA groups and order, pooling scales, downsample, ...)."""
    out = {}
    for name, m in module.named_modules():
        values = {k: v for k, v in vars(m).items()
                  if not k.startswith('_') and k not in ('training', 'in_index')
                  and isinstance(v, (bool, int, float, str, tuple, list))}
        out[name] = (type(m).__name__, values)
    return out


def convs(module):
    return [(name, m.in_channels, m.out_channels, m.kernel_size, m.dilation, m.groups)
            for name, m in module.named_modules() if isinstance(m, torch.nn.Conv2d)]


def test_every_table4_row_has_a_config_and_the_paper_figures():
    names = [name for name, _ in HEAD_SPECS]
    assert names == list(PAPER_TABLE4) == list(TABLE4_CONFIGS)
    assert all(osp.isfile(path) for path in TABLE4_CONFIGS.values())


@pytest.mark.parametrize('name', list(TABLE4_CONFIGS))
def test_benchmark_head_equals_the_config_head(name):
    ours = build_entry(dict(HEAD_SPECS)[name], 2048).head
    theirs = config_head(TABLE4_CONFIGS[name])
    assert type(ours) is type(theirs)
    assert convs(ours) == convs(theirs)  # channels, kernels, dilations, groups
    assert sum(p.numel() for p in ours.parameters()) == \
        sum(p.numel() for p in theirs.parameters())
    assert settings(ours) == settings(theirs)
    # the channel widths the paper gives (§3.4): 256 in the ASPP family, 512 elsewhere
    assert ours.channels == (256 if 'ASP' in name else 512)


def test_settings_tell_heads_apart():
    """The comparison above fails for a head one setting away from its config."""
    spec = dict(HEAD_SPECS)['ASP-OC (ISA)']
    theirs = config_head(TABLE4_CONFIGS['ASP-OC (ISA)'])
    for change in (dict(channels=512), dict(dilations=(6, 12, 18)),
                   dict(ocp_cfg=dict(groups=(4, 4)))):
        ours = build_entry(dict(spec, **change), 2048).head
        assert convs(ours) != convs(theirs) or settings(ours) != settings(theirs), change


@pytest.mark.parametrize('name', list(PAPER_TABLE4))
def test_table4_gflops_match_the_paper_or_say_why(name):
    """GFLOPs (2 x multiply-adds, counted on fake tensors) at the paper's
    1 x 2048 x 128 x 128: within 10 % of Table 4, or a note whose change to our
    head lands within 10 %."""
    spec = dict(HEAD_SPECS)[name]
    shape = (1, 2048, 128, 128)
    gflops = 2 * count_macs(build_entry(spec, 2048), (torch.empty(*shape), ))['total'] / 1e9
    paper = PAPER_TABLE4[name][1]
    row = dict(module=name, impl='fused', input='1x2048x128x128', gflops=gflops,
               paper_gflops=paper, vs_paper=gflops / paper)
    notes = table4_notes([row])
    if abs(gflops / paper - 1) <= 0.10:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0]['note'], f'{name}: {gflops:.1f} vs {paper}, no reason'
        assert abs(notes[0]['adjusted_gflops'] / paper - 1) <= 0.10, notes[0]


def test_heads_table_prints_the_paper_column_and_the_reason(tmp_path, tool, capsys):
    """At Table 4's input, with --repeat 0 --no-memory (no forward pass run)."""
    rows = tool('analysis_tools/benchmark_modules.py').main([
        '--kind', 'heads', '--only', 'ASPP', 'PPM', '--repeat', '0', '--no-memory',
        '--out-dir', str(tmp_path)])
    by = {r['module']: r for r in rows}
    assert set(by) == {'PPM', 'ASPP'}
    assert by['PPM']['paper_gflops'] == 619 and abs(by['PPM']['vs_paper'] - 1) < 0.01
    assert by['ASPP']['gflops'] == pytest.approx(577.83, abs=0.01)
    assert by['PPM']['memory_mb'] is None and by['PPM']['time_ms'] is None
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert 'paper_gflops' in header and 'vs_paper' in header
    assert 'time_ms' not in header and 'memory_mb' not in header  # empty columns left out
    assert "ASPP: 577.8 / 492: mmseg's ASPPHead fuses" in out and ': 491.9' in out
    notes = json.load(open(osp.join(tmp_path, 'table4_notes.json')))
    assert [n['module'] for n in notes] == ['ASPP']  # PPM is within 10 %


# --- benchmark_modules --peers (mmctx.analysis.peers) and --kind attention

def _peers():
    from mmctx.analysis import peers
    from mmctx.utils import register_all_modules
    register_all_modules()
    return peers


def test_peers_quick_run_writes_one_row_per_block_peer_size_pass_threads(tmp_path, tool,
                                                                         capsys):
    peers = _peers()
    only = ['mmcv ContextBlock', 'CC head']
    rows = tool('analysis_tools/benchmark_modules.py').main([
        '--peers', '--quick', '--only', *only, '--threads', '1', '2', '--repeat', '2',
        '--out-dir', str(tmp_path)])
    chosen, _ = peers.select(only)
    assert [c.peer for c in chosen] == ['mmcv ContextBlock', 'mmseg CCHead']
    expected = {(c.block, c.peer, 'x'.join(map(str, s)), p, t)
                for c in chosen for s in peers.QUICK_SIZES[c.family]
                for p in peers.PASSES for t in (1, 2)}
    keys = [(r['block'], r['peer'], r['input'], r['pass'], r['threads']) for r in rows]
    assert sorted(keys) == sorted(expected)
    for row in rows:
        assert row['peer_ms'] > 0 and row['peer_mb'] > 0
        if row['peer'] == 'mmseg CCHead':  # a reference point: no mmctx figure, no ratio
            assert row['ours_ms'] is row['time_ratio'] is row['memory_ratio'] is None
            assert 'reference point' in row['note']
        else:
            assert row['check_rel'] <= 1e-5
            assert row['time_ratio'] == pytest.approx(row['ours_ms'] / row['peer_ms'])
            assert row['memory_ratio'] == pytest.approx(row['ours_mb'] / row['peer_mb'])
    out = capsys.readouterr().out
    assert 'best peer' in out and 'time_ratio' in out
    with open(osp.join(tmp_path, 'peers_cpu.csv')) as f:
        csv_rows = list(csv.DictReader(f))
    assert [(r['block'], r['peer'], r['input'], r['pass'], int(r['threads']))
            for r in csv_rows] == keys
    assert float(csv_rows[0]['time_ratio']) == pytest.approx(rows[0]['time_ratio'])
    assert json.load(open(osp.join(tmp_path, 'peers_cpu.json'))) == json.loads(json.dumps(rows))
    summary = json.load(open(osp.join(tmp_path, 'peers_cpu_summary.json')))
    assert len(summary) == 4  # GC only: 1 size x 2 passes x 2 thread counts
    assert all(s['best_peer_time'] == 'mmcv ContextBlock' for s in summary)
    with open(osp.join(tmp_path, 'peers_cpu.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_time_interleaved_rotates_the_order_and_takes_medians():
    from mmctx.analysis.timing import time_interleaved
    calls = []
    runs = [lambda: calls.append('a'), lambda: calls.append('b'), lambda: calls.append('c')]
    times = time_interleaved(runs, repeat=3, warmup=1)
    assert len(times) == 3 and all(t >= 0 for t in times)
    assert calls == list('abc' 'abc' 'bca' 'cab')
    # the host's share: until the call returned, never more than the call
    # (the same on the CPU, where nothing runs asynchronously)
    import time
    runs = [lambda: time.sleep(0.002), lambda: time.sleep(0.004)]
    times, host = time_interleaved(runs, repeat=3, warmup=0, host=True)
    assert all(h <= t for h, t in zip(host, times)) and host[1] > host[0] >= 0.002


def test_every_available_peer_equals_mmctx_after_the_transfer():
    peers = _peers()
    chosen, notes = peers.select()
    assert all('timm' in n for n in notes)
    assert len(chosen) >= 12
    for cmp in chosen:
        ours, peer, rel = peers.build_pair(cmp, 32)  # CCHead: C/4 / 8 >= 1
        if cmp.build_ours is None:
            assert ours is None and rel is None
        else:
            assert rel <= 1e-5, cmp
            # the transfer copied the peer's weights, not a coincidence of seeds
            assert ours is not None and sum(p.numel() for p in ours.parameters()) > 0


def test_a_peer_computing_something_else_is_refused():
    peers = _peers()
    gc = next(c for c in peers.COMPARISONS if c.peer == 'mmcv ContextBlock')

    def planted(c):  # mmcv's block with one more (nonzero) output channel offset
        block = gc.build_peer(c)
        block.register_forward_hook(lambda m, i, out: out + 1e-3 * out.std())
        return block

    import dataclasses
    with pytest.raises(peers.PeerMismatch, match='differ'):
        peers.build_pair(dataclasses.replace(gc, build_peer=planted), 16)
    rows = peers.run_peers([dataclasses.replace(gc, build_peer=planted)], peers.QUICK_SIZES,
                           repeat=1, log=lambda s: None)
    assert len(rows) == len(peers.PASSES)
    for row in rows:  # refused: the reason, no figure
        assert row['note'].startswith('refused (PeerMismatch): outputs differ')
        assert row['peer_ms'] is row['ours_ms'] is row['time_ratio'] is None
    # a peer too large for a size is skipped there, with the reason
    rows = peers.run_peers([dataclasses.replace(gc, max_tokens=8, skip_reason='too big')],
                           peers.QUICK_SIZES, repeat=1, log=lambda s: None)
    assert [r['note'] for r in rows] == ['skipped: too big'] * len(peers.PASSES)
    # a key map that leaves an mmctx weight unset is refused before any run
    with pytest.raises(KeyError, match='not filled'):
        peers.build_pair(dataclasses.replace(
            gc, rename=lambda k: None if 'channel_add_conv.3' in k else gc.rename(k)), 16)


def test_a_failing_peer_backward_is_reported_not_timed():
    peers = _peers()
    nl = next(c for c in peers.COMPARISONS if c.block == 'NL (concatenation)')
    rows = peers.run_peers([nl], peers.QUICK_SIZES, repeat=1, memory=False, log=lambda s: None)
    by_pass = {r['pass']: r for r in rows}
    assert by_pass['forward']['time_ratio'] > 0
    # mmcv's concatenation mode divides its ReLU output in place: no backward
    bwd = by_pass['forward_backward']
    assert bwd['peer_ms'] is None and bwd['time_ratio'] is None and bwd['ours_ms'] > 0
    assert bwd['note'].startswith('peer fails')


def test_graph_replay_columns_pad_like_the_eager_ones(monkeypatch):
    """``graphs`` (CUDA): each call replayed from a CUDA graph, the kernels'
    time alone. On the CPU it is refused by name; the rows' plumbing is checked
    with a stand-in for the capture (a reference point has no mmctx figure, a
    failed capture says why and leaves the eager figures)."""
    from mmcv.cnn import ContextBlock
    peers = _peers()
    gc, cc = peers.select(['mmcv ContextBlock', 'CC head'])[0]
    with pytest.raises(ValueError, match='graphs=True needs a CUDA device.*cpu'):
        peers.run_peers([gc], peers.QUICK_SIZES, device='cpu', graphs=True)
    captured = []

    def stand_in(module, x, pass_):
        if isinstance(module, ContextBlock):
            raise RuntimeError('operation not permitted when stream is capturing\nmore')
        captured.append(type(module).__name__)
        return peers._runner(module, x, pass_)
    monkeypatch.setattr(peers, '_cuda_graphs_possible', lambda device: True)
    monkeypatch.setattr(peers, '_graph_runner', stand_in)
    rows = peers.run_peers([gc, cc], peers.QUICK_SIZES, repeat=1, memory=False, graphs=True,
                           log=lambda s: None)
    assert len(rows) == 2 * len(peers.PASSES)
    for row in rows[:2]:  # mmctx's GC block captured, mmcv's refused: both eager figures kept
        assert row['ours_ms'] > 0 and row['peer_ms'] > 0
        assert row['ours_graph_ms'] is None and row['peer_graph_ms'] is None
        assert row['note'] == 'no CUDA graph: operation not permitted when stream is capturing'
    for row in rows[2:]:  # the reference point: the peer alone
        assert row['ours_graph_ms'] is None and row['peer_graph_ms'] > 0
        assert 'reference point' in row['note'] and 'graph' not in row['note']
    assert captured.count('GlobalContextBlock') == 2 and 'HeadForward' in captured


def test_attention_sweep_reports_the_auto_choice(tmp_path, tool):
    from mmctx.models.layers.attention import resolve_impl
    rows = tool('analysis_tools/benchmark_modules.py').main([
        '--kind', 'attention', '--quick', '--repeat', '1', '--out-dir', str(tmp_path)])
    assert len(rows) == 4  # 2 cases x 2 passes
    for row in rows:
        grad = row['pass'] == 'forward_backward'
        assert row['auto'] == resolve_impl('cpu', torch.float32, row['groups'], row['tokens'],
                                           row['tokens'], row['qk_width'], row['v_width'],
                                           grad=grad)
        assert row['fastest'] == ('fused' if row['fused_ms'] <= row['explicit_ms']
                                  else 'explicit')
        assert row['auto_is_fastest'] == (row['auto'] == row['fastest'])
        assert row['device'] == 'cpu' and row['dtype'] == 'float32'
        # the matrix of the explicit path (4 x 64 x 64 floats) is in its peak
        assert row['explicit_mb'] >= 4 * 64 * 64 * 4 / 2**20
        assert row['fused_mb'] > 0
    assert [r['auto'] for r in rows] == ['fused', 'fused', 'explicit', 'explicit']
    with open(osp.join(tmp_path, 'attention_impls_cpu.csv')) as f:
        assert [r['pass'] for r in csv.DictReader(f)] == [r['pass'] for r in rows]


def test_committed_cuda_sweep_is_the_rule_of_resolve_impl():
    """docs/benchmarks/attention_impls_cuda_nvidia-h200.json (an H200, three
    dtypes): its auto column is what resolve_impl says now, and where that is
    not the faster path it costs at most 10 % more time."""
    from mmctx.models.layers.attention import resolve_impl
    with open(osp.join(REPO, 'docs', 'benchmarks', 'attention_impls_cuda_nvidia-h200.json')) as f:
        rows = json.load(f)
    assert {r['dtype'] for r in rows} == {'float32', 'float16', 'bfloat16'}
    assert len(rows) == 66 and all(r['device'] == 'cuda' for r in rows)
    for row in rows:
        grad = row['pass'] == 'forward_backward'
        auto = resolve_impl('cuda', getattr(torch, row['dtype']), row['groups'], row['tokens'],
                            row['tokens'], row['qk_width'], row['v_width'], grad=grad)
        assert auto == row['auto'], row['case']
        times = dict(fused=row['fused_ms'], explicit=row['explicit_ms'])
        assert times[auto] <= 1.10 * min(times.values()), (row['case'], row['dtype'], grad)
    assert sum(r['auto_is_fastest'] for r in rows) == 65
