"""GloRe unit against explicit sums of Chen et al. Eqs. 1-4."""
import pytest
import torch

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def _reference(unit, x):
    b, c, h, w = x.shape
    xs = unit.reduce(x).flatten(2)[0]  # (C', L)
    bp = unit.project(x).flatten(2)[0]  # (N, L)
    cs, n, length = xs.shape[0], bp.shape[0], xs.shape[1]
    v = torch.zeros(n, cs, dtype=x.dtype)
    for i in range(n):
        for k in range(cs):
            v[i, k] = sum(bp[i, l] * xs[k, l] for l in range(length))
    a = unit.adjacency.weight[:, :, 0]
    ab = unit.adjacency.bias
    wg = unit.state_update.weight[:, :, 0]
    z = torch.zeros(n, cs, dtype=x.dtype)
    for i in range(n):
        for k in range(cs):
            av = sum(a[i, j] * v[j, k] for j in range(n)) + ab[i]
            z[i, k] = v[i, k] - av
    z2 = torch.relu(z @ wg.T)  # (N, C'), state update per node
    y = torch.zeros(cs, length, dtype=x.dtype)
    for k in range(cs):
        for l in range(length):
            y[k, l] = sum(z2[i, k] * bp[i, l] for i in range(n))
    return x + unit.norm(unit.extend(y.view(1, cs, h, w)))


def test_glore_matches_equations():
    from mmctx.models.decode_heads.glore_head import GloReUnit
    torch.manual_seed(0)
    unit = GloReUnit(6, state_channels=4, num_nodes=3).double().eval()
    x = torch.randn(1, 6, 2, 3, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), _reference(unit, x))


def test_glore_head_forward_backward():
    import mmctx  # noqa: F401
    from mmseg.registry import MODELS
    head = MODELS.build(dict(type='GloReHead', in_channels=16, channels=8, num_classes=3,
                             norm_cfg=dict(type='BN')))
    out = head([torch.randn(2, 16, 5, 5)])
    assert out.shape == (2, 3, 5, 5)
    out.sum().backward()
    assert head.glore.project.weight.grad.abs().sum() > 0
