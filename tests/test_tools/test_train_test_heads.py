"""Base-OC, Pyramid-OC, ASP-OC (Yuan et al. (OCNet)) and GCNL (Woo et al. (GCNL)) heads end to end through the
real tools.

Each head trains 20 iterations (AdamW, 2 scenes of 128x128 a batch) on the
generated semantic shapes data with ``tools/train.py`` and is evaluated with
``tools/test.py``, which prints mIoU, fwIoU and the boundary F-score at
3/5/9/12 px (Yuan et al. (OCNet) Table 6). The model is a CPU-sized variant of the
papers' (ResNet-18 with 16 base channels, heads of 16 channels); the printed
fwIoU is checked against the saved label maps.
"""
import os
import os.path as osp
import re

import numpy as np
import pytest
from PIL import Image

from tools_helpers import TEST, TRAIN, metric, run_tool, shapes_segmentor_config

pytestmark = pytest.mark.usefixtures('mmseg_scope')

# the tiny shapes FCN with an auxiliary head, AdamW and the FWIoU metric, 20 iterations
AUXILIARY = ('dict(in_channels=64, channels=8, num_classes=6, norm_cfg=norm_cfg, '
             'loss_decode=dict(loss_weight=0.4))')
SETTING = '''
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=0.003, weight_decay=0.0001))
val_evaluator = dict(type='FWIoUMetric', iou_metrics=['mIoU'], bf_tolerances=(3, 5, 9, 12))
test_evaluator = val_evaluator
'''
HEADS = {
    'BaseOCHead': "attention='isa', ocp_cfg=dict(groups=(4, 4)),",
    'PyramidOCHead': "attention='isa', pyramid_scales=(1, 2, 3, 6), ocp_cfg=dict(groups=(2, 2)),",
    'ASPOCHead': "attention='isa', dilations=(12, 24, 36), ocp_cfg=dict(groups=(4, 4)),",
    # Woo et al. (GCNL) "FCN + Ours": GCNL block (contextualized diagonal, relative position) in the FCN head
    'GCNLHead': 'num_heads=2, reduction=2, attn_drop=0.1,',
}


def direct_fwiou(pred_dir, gt_dir):
    inter, union, count = np.zeros(6), np.zeros(6), np.zeros(6)
    names = sorted(os.listdir(gt_dir))
    for name in names:
        gt = np.array(Image.open(osp.join(gt_dir, name)))
        pred = np.array(Image.open(osp.join(pred_dir, name)))
        for c in range(6):
            g, p = gt == c, pred == c
            inter[c] += (g & p).sum()
            union[c] += (g | p).sum()
            count[c] += g.sum()
    iou = np.divide(inter, union, out=np.zeros(6), where=union > 0)
    return 100 * (count / count.sum() * iou).sum(), len(names)


@pytest.mark.parametrize('head', list(HEADS))
def test_head_trains_and_tests_through_the_tools(head, tmp_path, shapes_root):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(shapes_segmentor_config(shapes_root, head=head, extra=HEADS[head], iters=20,
                                           auxiliary_head=AUXILIARY) + SETTING)
    work = str(tmp_path / 'work')
    _, out = run_tool(TRAIN, str(cfg), '--work-dir', work)
    assert re.search(r'Iter\(train\) \[20/20\]', out)
    ckpt = osp.join(work, 'iter_20.pth')
    assert osp.isfile(ckpt)

    pred = tmp_path / 'pred'
    _, out = run_tool(TEST, str(cfg), ckpt, '--work-dir', str(tmp_path / 'test'),
                      '--out', str(pred))
    print(f'\n{head}: ' + ', '.join(
        f'{k} {metric(out, k)}' for k in ('mIoU', 'fwIoU', 'BF@3px', 'BF@5px', 'BF@9px',
                                          'BF@12px')))
    for name in ('mIoU', 'fwIoU'):
        assert 0.0 <= metric(out, name) <= 100.0
    bf = [metric(out, f'BF@{d}px') for d in (3, 5, 9, 12)]
    assert all(0.0 <= v <= 100.0 for v in bf)
    assert bf == sorted(bf)  # a wider tolerance never lowers P, R or F
    assert 'per class boundary F-score' in out
    # the printed fwIoU is the one of the saved predictions
    expected, n = direct_fwiou(str(pred), osp.join(shapes_root, 'semantic', 'val'))
    assert n == 4 and len(list(pred.glob('*.png'))) == 4
    assert metric(out, 'fwIoU') == pytest.approx(expected, abs=0.01)
