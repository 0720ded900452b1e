"""benchmark_modules: the seed 004 Table 4 protocol on small inputs."""
import csv
import json
import os.path as osp

import pytest


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
