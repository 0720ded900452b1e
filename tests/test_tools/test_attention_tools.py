"""attention_stats / visualize_attention on a checkpoint trained on the shapes data."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from mmctx.analysis import avg_cosine_distance, block_statistics, key_grid

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo', 'retinanet_r50w16-gcb_fpn64_1xb4-400it_shapes-128.py')

# the demo detector with a GCNL block in c4/c5 and an ENL block in c5
CONFIG = '''
_base_ = {demo!r}
data_root = {root!r}
model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='GCNLBlock', num_heads=4), stages=(False, False, True, True),
             position='after_conv3'),
        dict(cfg=dict(type='EfficientNonLocal2d'), stages=(False, False, False, True),
             position='after_conv2'),
    ]),
    test_cfg=dict(score_thr=0.0))
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=2, val_interval=100)
default_hooks = dict(checkpoint=dict(interval=2))
'''


def test_avg_cosine_distance_matches_the_double_sum():
    torch.manual_seed(0)
    v = torch.randn(7, 5)
    v[3] = 0  # a zero vector: cosine 0 with others, distance 0 with itself
    total = 0.0
    for i in range(7):
        for j in range(7):
            if i == j:
                continue
            a, b = v[i], v[j]
            cos = 0.0 if a.norm() == 0 or b.norm() == 0 else float(a @ b / a.norm() / b.norm())
            total += (1 - cos) / 2
    assert avg_cosine_distance(v) == pytest.approx(total / 49, abs=1e-9)
    assert avg_cosine_distance(torch.ones(4, 3)) == pytest.approx(0, abs=1e-12)


def _slow_distance(rows):
    """Mean of (1 - cos) / 2 over all ordered pairs, by a double loop."""
    n = len(rows)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                a, b = rows[i].double(), rows[j].double()
                total += (1 - float(a @ b / a.norm() / b.norm())) / 2
    return total / n**2


@pytest.mark.parametrize('mode', ['embedded_gaussian', 'gaussian', 'dot_product'])
def test_non_local_fine_grained_columns(mode):
    """Global Context Networks, Table 3: key = W_k x, query = W_q x and prod = the
    rows of q_i . k_j, each averaged over positions as Eq. avg_dist."""
    import mmctx  # noqa: F401
    from mmctx.models.layers import NonLocal2dBlock
    torch.manual_seed(0)
    block = NonLocal2dBlock(8, reduction=2, mode=mode).eval()
    x = torch.randn(1, 8, 3, 4)
    with torch.no_grad():
        stats = block_statistics(block, x, block(x))
        tokens = x[0].flatten(1).t()  # (12, 8)
        if mode == 'gaussian':
            q = k = tokens
            assert 'key' not in stats and 'query' not in stats
        else:
            q = block.theta(x)[0].flatten(1).t()
            k = block.phi(x)[0].flatten(1).t()
            assert stats['query'] == pytest.approx(_slow_distance(q), abs=1e-9)
            assert stats['key'] == pytest.approx(_slow_distance(k), abs=1e-9)
        prod = torch.stack([torch.stack([q[i] @ k[j] for j in range(12)]) for i in range(12)])
        assert stats['prod'] == pytest.approx(_slow_distance(prod), abs=1e-6)
        assert stats['input'] == pytest.approx(_slow_distance(tokens), abs=1e-9)


class _QueryIndependent(torch.nn.Module):
    """A GC-style block: one attention map for all queries, the same context added."""

    def get_attention(self, x):
        return x.mean(1).flatten(1).softmax(-1)[:, None, None]

    def forward(self, x):
        att = self.get_attention(x)[:, 0, 0]  # (B, HW)
        context = torch.einsum('bcn,bn->bc', x.flatten(2), att)
        return x + context[..., None, None]


def test_query_independent_block_has_zero_att_and_output_distance():
    block = _QueryIndependent()
    x = torch.randn(2, 6, 4, 5)
    stats = block_statistics(block, x, block(x))
    assert stats['input'] > 0.1
    assert stats['att'] == pytest.approx(0, abs=1e-9)
    assert stats['output'] == pytest.approx(0, abs=1e-9)


def test_key_grid_for_sub_sampled_keys():
    assert key_grid(20, (4, 5)) == (4, 5)
    assert key_grid(6, (5, 3)) == (3, 2)
    with pytest.raises(ValueError, match='grid'):
        key_grid(7, (4, 5))


@pytest.fixture(scope='module')
def trained(tmp_path_factory, shapes_root):
    tmp = tmp_path_factory.mktemp('attention')
    cfg = tmp / 'cfg.py'
    cfg.write_text(CONFIG.format(demo=DEMO, root=shapes_root))
    work = tmp / 'work'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), str(cfg), '--work-dir', str(work)],
        cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return str(cfg), str(work / 'iter_2.pth'), tmp


def test_attention_stats_reports_every_block(trained, tool):
    cfg, ckpt, tmp = trained
    out = str(tmp / 'stats.json')
    stats = tool('analysis_tools/attention_stats.py').main(
        [cfg, ckpt, '--num-images', '2', '--out', out])
    saved = json.load(open(out))
    assert saved['num_images'] == 2
    kinds = {name.split('.')[-1].rstrip('0123456789') for name in stats}
    assert kinds == {'gcnl', 'enl'}  # the plugins' names
    assert len(stats) == 6 + 3 + 3  # GCNL in 6 c4 + 3 c5 bottlenecks, ENL in 3 c5
    for cols in stats.values():
        assert 0 <= cols['input'] <= 1 and 0 <= cols['att'] <= 1 and 0 <= cols['output'] <= 1


def test_visualize_attention_draws_overlays(trained, tool, shapes_root):
    cfg, ckpt, tmp = trained
    image_path = sorted(os.listdir(osp.join(shapes_root, 'images', 'val')))[0]
    image_path = osp.join(shapes_root, 'images', 'val', image_path)
    out_dir = str(tmp / 'vis')
    written = tool('analysis_tools/visualize_attention.py').main(
        [cfg, ckpt, image_path, '--points', '10,20', '100,64', '--out-dir', out_dir])
    assert len(written) == 12
    image = cv2.imread(image_path)
    picture = cv2.imread(written[0])
    assert picture.shape == (image.shape[0], 2 * image.shape[1], 3)
    # the overlay changed the image, and the two query panels differ
    assert np.abs(picture[:, :image.shape[1]].astype(int) - image).mean() > 5
    assert not np.array_equal(picture[:, :image.shape[1]], picture[:, image.shape[1]:])
    with pytest.raises(ValueError, match='outside'):
        tool('analysis_tools/visualize_attention.py').main(
            [cfg, ckpt, image_path, '--points', '500,5', '--out-dir', out_dir])
