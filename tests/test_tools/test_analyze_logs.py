"""tools/analysis_tools/analyze_logs.py on scalars.json files written by the test."""
import json
import os.path as osp

import numpy as np
import pytest

from tools_helpers import REPO, run_tool

# An epoch-based run: 3 epochs of 40 iterations, a training line every 10
# iterations, a validation line (mAP) after every epoch. The first line of an
# epoch is slow (start-up); epoch 2 is the slowest, epoch 3 the fastest.
EPOCH_TIMES = {1: [2.0, 0.5, 0.5, 0.5], 2: [3.0, 0.7, 0.8, 0.9], 3: [2.5, 0.4, 0.4, 0.4]}
MAP = {1: 0.10, 2: 0.25, 3: 0.31}


def epoch_run_lines():
    lines = []
    for epoch, times in EPOCH_TIMES.items():
        for k, t in enumerate(times):
            it = (epoch - 1) * 40 + (k + 1) * 10
            lines.append(dict(lr=0.01 / epoch, loss=10.0 / it, time=t, data_time=0.01,
                              epoch=epoch, iter=it, memory=100, step=it))
        lines.append({'coco/bbox_mAP': MAP[epoch], 'data_time': 0.002, 'time': 0.05,
                      'step': epoch})
    return lines


def iter_run_lines():
    """An iteration-based run: 6 lines, 2 validations (mIoU at iterations 30 and 60)."""
    lines = []
    for it in range(10, 70, 10):
        lines.append(dict(lr=0.1, loss=1.0 + 1.0 / it, time=0.2 + it / 1000, data_time=0.01,
                          iter=it, step=it))
        if it % 30 == 0:
            lines.append(dict(mIoU=it / 2, aAcc=90.0, time=0.03, data_time=0.001, step=it))
    return lines


def write_run(work_dir, timestamp, lines):
    vis = work_dir / timestamp / 'vis_data'
    vis.mkdir(parents=True)
    with open(vis / 'scalars.json', 'w') as f:
        for line in lines:
            f.write(json.dumps(line) + '\n')
    return str(vis / 'scalars.json')


@pytest.fixture
def analyze(tool):
    return tool('analysis_tools/analyze_logs.py')


@pytest.fixture
def runs(tmp_path):
    a = tmp_path / 'run_a'
    write_run(a, '20240101_000000', iter_run_lines())  # an older run: not the one read
    path_a = write_run(a, '20240102_000000', epoch_run_lines())
    path_b = write_run(tmp_path / 'run_b', '20240103_000000', iter_run_lines())
    return str(a), path_a, path_b


def test_load_and_series(analyze, runs):
    work_a, path_a, path_b = runs
    run = analyze.load_scalars(work_a)  # a work dir: its newest run
    assert run['path'] == path_a
    assert len(run['train']) == 12 and len(run['val']) == 3
    xs, ys = analyze.series(run, 'loss')
    assert xs == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]
    assert ys == pytest.approx([10.0 / x for x in xs])
    # validation after epoch e sits at the last iteration of epoch e
    assert analyze.series(run, 'coco/bbox_mAP') == ([40, 80, 120], [0.10, 0.25, 0.31])
    run_b = analyze.load_scalars(osp.dirname(osp.dirname(path_b)))  # a run directory
    assert analyze.series(run_b, 'mIoU') == ([30, 60], [15.0, 30.0])
    # `time` is read from the training lines (iteration time), not the validation ones
    assert analyze.series(run_b, 'time')[1] == pytest.approx([0.21, 0.22, 0.23, 0.24, 0.25,
                                                              0.26])


def test_plot_curve_several_runs(analyze, runs, tmp_path):
    _, path_a, path_b = runs
    out = tmp_path / 'loss.png'
    fig = analyze.main(['plot_curve', path_a, path_b, '--keys', 'loss', 'lr',
                        '--legend', 'gc', 'nl', '--out', str(out)])
    assert out.stat().st_size > 1000
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    assert sorted(lines) == ['gc: loss', 'gc: lr', 'nl: loss', 'nl: lr']
    assert list(lines['nl: loss'].get_xdata()) == [10, 20, 30, 40, 50, 60]
    assert list(lines['nl: loss'].get_ydata()) == pytest.approx(
        [1.0 + 1.0 / it for it in range(10, 70, 10)])
    assert list(lines['gc: lr'].get_ydata()) == pytest.approx([0.01] * 4 + [0.005] * 4
                                                              + [0.01 / 3] * 4)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(legend) == sorted(lines)


def test_cal_train_time(analyze, runs, capsys):
    _, path_a, path_b = runs
    t_a, t_b = analyze.main(['cal_train_time', path_a, path_b])
    kept = [t for times in EPOCH_TIMES.values() for t in times[1:]]  # first line of an epoch out
    assert t_a['avg'] == pytest.approx(sum(kept) / len(kept))
    assert t_a['epochs'] == pytest.approx({1: 0.5, 2: 0.8, 3: 0.4})
    assert (t_a['slowest'], t_a['fastest']) == (2, 3)
    # an iteration-based run: its first line left out, no epochs
    assert t_b['avg'] == pytest.approx(np.mean([0.22, 0.23, 0.24, 0.25, 0.26]))
    assert t_b['epochs'] == {}
    out = capsys.readouterr().out
    assert 'slowest epoch 2: 0.8000 s/iter' in out and 'fastest epoch 3: 0.4000' in out
    (t_all,) = analyze.main(['cal_train_time', path_a, '--include-outliers'])
    every = [t for times in EPOCH_TIMES.values() for t in times]
    assert t_all['avg'] == pytest.approx(sum(every) / len(every))


def test_bad_logs_are_named(analyze, runs, tmp_path):
    _, path_a, _ = runs
    run = analyze.load_scalars(path_a)
    with pytest.raises(KeyError, match=r"'mAP' is not logged in .*scalars.json; its keys: "
                                       r'lr, loss, time'):
        analyze.series(run, 'mAP')
    with pytest.raises(FileNotFoundError, match='log not found: .*nowhere'):
        analyze.load_scalars(str(tmp_path / 'nowhere'))
    with pytest.raises(FileNotFoundError, match='no vis_data/scalars.json under'):
        analyze.load_scalars(str(tmp_path))
    bad = tmp_path / 'bad.json'
    bad.write_text('{"loss": 1, "iter": 1, "step": 1}\n{"loss": 2,\n')
    with pytest.raises(ValueError, match=r'bad.json, line 2: not JSON'):
        analyze.load_scalars(str(bad))
    with pytest.raises(ValueError, match='--legend names 1 runs, but 2 logs'):
        analyze.main(['plot_curve', path_a, path_a, '--legend', 'x',
                      '--out', str(tmp_path / 'x.png')])


def test_command_line(runs, tmp_path):
    _, path_a, _ = runs
    out = tmp_path / 'map.png'
    _, text = run_tool(osp.join(REPO, 'tools', 'analysis_tools', 'analyze_logs.py'),
                       'plot_curve', path_a, '--keys', 'coco/bbox_mAP', '--out', str(out))
    assert out.is_file() and f'saved {out}' in text
