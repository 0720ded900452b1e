"""Parameter and FLOP counting: traced products, fused attention, paper Params."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmctx.analysis import count_flops, count_macs, count_parameters, flops_by_kind
from mmctx.analysis.memory import peak_memory

MMDET_CONFIGS = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'configs')


class _Attention(nn.Module):

    def __init__(self, fused):
        super().__init__()
        self.fused = fused

    def forward(self, q, k, v):
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        attn = (q @ k.transpose(-2, -1) * q.shape[-1]**-0.5).softmax(-1)
        return attn @ v


@pytest.mark.parametrize('fused', [True, False])
def test_attention_products_are_counted(fused):
    b, h, nq, nk, d, dv = 2, 3, 10, 7, 4, 5
    q, k, v = torch.randn(b, h, nq, d), torch.randn(b, h, nk, d), torch.randn(b, h, nk, dv)
    flops, _ = count_flops(_Attention(fused), (q, k, v))
    # q k^T: b*h*nq*nk*d multiply-adds; attn v: b*h*nq*nk*dv
    assert flops == b * h * nq * nk * d + b * h * nq * nk * dv


@pytest.mark.parametrize('fused', [True, False])
def test_count_macs_at_dispatch_agrees_with_the_trace(fused):
    b, h, nq, nk, d, dv = 2, 3, 10, 7, 4, 5
    q, k, v = torch.randn(b, h, nq, d), torch.randn(b, h, nk, d), torch.randn(b, h, nk, dv)
    expected = b * h * nq * nk * (d + dv)
    for fake in (True, False):
        assert count_macs(_Attention(fused), (q, k, v), fake=fake) == dict(
            total=expected, conv_linear=0, attention=expected)


@pytest.mark.parametrize('name', ['DANet', 'Base-OC (SA)', 'ASP-OC (ISA)', 'Efficient Attention'])
def test_count_macs_splits_like_the_trace_on_heads(name):
    """Dispatch count on fake tensors == mmengine's traced count of a real run,
    for the conv / linear part and the attention part (the trace also counts
    norms and pooling, which the dispatch count leaves out)."""
    from mmctx.analysis.benchmark import HEAD_SPECS, build_entry
    head = build_entry(dict(HEAD_SPECS)[name], 32)
    x = torch.randn(1, 32, 20, 24)
    with torch.no_grad():
        _, analyzer = count_flops(head, (x, ))
    traced = flops_by_kind(analyzer)
    counted = count_macs(head, (x, ), per_module=True)
    assert counted['conv_linear'] == traced['conv_linear'] > 0
    assert counted['attention'] == pytest.approx(traced['attention'], rel=1e-6)
    assert counted['total'] == counted['conv_linear'] + counted['attention']
    # per module: the classifier is a 1x1 conv C -> 19 at every position
    assert counted['modules']['head.conv_seg'] == 20 * 24 * head.head.conv_seg.in_channels * 19


def test_conv_linear_part_leaves_out_attention_products():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(2))
    x = torch.randn(2, 3, 5, 6)

    class ConvThenGram(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = model

        def forward(self, x):
            y = self.body(x)  # (2, 8, 30)
            return y @ y.transpose(1, 2)

    counted = count_macs(ConvThenGram(), (x, ))
    assert counted['conv_linear'] == 2 * 30 * 8 * 3 * 9
    assert counted['attention'] == 2 * 8 * 8 * 30


def test_count_parameters_separates_frozen():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    counts = count_parameters(model)
    assert counts == dict(total=3 * 4 + 4 + 4 * 2 + 2, trainable=4 * 2 + 2)


def test_peak_memory_sees_the_attention_matrix():
    n, d = 48 * 48, 8
    x = torch.randn(1, n, d)
    matrix_bytes = n * n * 4

    def dense():
        return ((x @ x.transpose(1, 2)).softmax(-1) @ x).sum()

    def reordered():
        return (x @ (x.transpose(1, 2) @ x)).sum()

    with torch.no_grad():
        dense_peak, reordered_peak = peak_memory(dense), peak_memory(reordered)
    assert dense_peak >= matrix_bytes
    assert reordered_peak < matrix_bytes / 20


GCNL_CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                        'configs', 'gcnl')


# Woo et al. (GCNL) Table 2 Params column, with and without EBFPN
@pytest.mark.parametrize('config,paper_params', [
    (osp.join(MMDET_CONFIGS, 'retinanet/retinanet_r50_fpn_1x_coco.py'), 37.74e6),
    (osp.join(MMDET_CONFIGS, 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'), 41.53e6),
    (osp.join(GCNL_CONFIGS, 'retinanet_r50_fpn-ebfpn_1x_coco.py'), 38.14e6),
    (osp.join(GCNL_CONFIGS, 'faster-rcnn_r50_fpn-ebfpn_1x_coco.py'), 41.93e6),
    (osp.join(GCNL_CONFIGS, 'mask-rcnn_r50_fpn-ebfpn_1x_coco.py'), 44.57e6),
])
def test_get_flops_reproduces_paper_params(config, paper_params, capsys, tool):
    result = tool('analysis_tools/get_flops.py').main([config, '--shape', '256', '256'])
    assert abs(result['trainable'] - paper_params) / paper_params < 0.01
    assert result['params'] > result['trainable']
    assert result['flops'] > 1e9
    assert 0 < result['flops_conv'] <= result['flops']
    out = capsys.readouterr().out
    assert 'Params:' in out and 'conv / linear layers only' in out
