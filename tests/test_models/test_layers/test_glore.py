"""GloReUnit (mmctx/models/layers/glore.py) against explicit sums of Chen et al.,
"Graph-Based Global Reasoning Networks", Eqs. 1-4; weights shared, float64. The
reference reads the unit's weight tensors only, never its modules."""
import pytest
import torch
import torch.nn.functional as F

from mmctx.models.layers import GloReUnit
from layer_helpers import randomise  # noqa: E402


def _reference(unit, x, norm=True):
    b, c, h, w = x.shape
    out = []
    for bi in range(b):
        xf = x[bi].reshape(c, -1)  # (C, L)
        xs = unit.reduce.weight[:, :, 0, 0] @ xf + unit.reduce.bias[:, None]  # Eq. 1: X'
        bp = unit.project.weight[:, :, 0, 0] @ xf + unit.project.bias[:, None]  # Eq. 2: B
        cs, n, length = xs.shape[0], bp.shape[0], xs.shape[1]
        v = torch.zeros(n, cs, dtype=x.dtype)  # V = X' B^T, as nodes x states
        for i in range(n):
            for k in range(cs):
                v[i, k] = sum(bp[i, l] * xs[k, l] for l in range(length))
        a, ab = unit.adjacency.weight[:, :, 0], unit.adjacency.bias
        wg = unit.state_update.weight[:, :, 0]
        z = torch.zeros(n, cs, dtype=x.dtype)  # Eq. 3: (I - A_g) V
        for i in range(n):
            for k in range(cs):
                z[i, k] = v[i, k] - (sum(a[i, j] * v[j, k] for j in range(n)) + ab[i])
        z = torch.relu(z @ wg.T)  # Eq. 3: ... W_g, ReLU
        y = torch.zeros(cs, length, dtype=x.dtype)  # Eq. 4: Y = Z B
        for k in range(cs):
            for l in range(length):
                y[k, l] = sum(z[i, k] * bp[i, l] for i in range(n))
        out.append(unit.extend.weight[:, :, 0, 0] @ y)
    ext = torch.stack(out).reshape(b, c, h, w)
    if norm:  # eval-mode BN
        bn = unit.norm
        ext = F.batch_norm(ext, bn.running_mean, bn.running_var, bn.weight, bn.bias, False,
                           0.0, bn.eps)
    return x + ext


def _unit(**kwargs):
    unit = randomise(GloReUnit(6, state_channels=4, num_nodes=3, **kwargs), 0, std=0.5)
    return unit.double().eval()


def test_glore_matches_eqs_1_to_4():
    unit = _unit()
    with torch.no_grad():
        unit.norm.running_mean.normal_()
        unit.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 6, 2, 3, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), _reference(unit, x), rtol=1e-10, atol=1e-10)


def test_glore_without_norm():
    unit = _unit(norm_cfg=None)
    assert isinstance(unit.norm, torch.nn.Identity)
    x = torch.randn(1, 6, 3, 2, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), _reference(unit, x, norm=False),
                                   rtol=1e-10, atol=1e-10)


def test_get_projection_is_b_and_there_is_no_attention_map():
    unit = _unit()
    x = torch.randn(2, 6, 2, 3, dtype=torch.double)
    with torch.no_grad():
        b = torch.einsum('nc,bcl->bnl', unit.project.weight[:, :, 0, 0], x.flatten(2))
        b = b + unit.project.bias[:, None]
        torch.testing.assert_close(unit.get_projection(x), b)
    assert not hasattr(unit, 'get_attention')  # the analysis tools must not read B as one


def test_glore_bad_args():
    with pytest.raises(ValueError, match='norm_cfg'):
        GloReUnit(8, norm_cfg=dict(type='NoSuchNorm'))
    with pytest.raises(ValueError, match='norm_cfg'):
        GloReUnit(8, norm_cfg='BN')
    with pytest.raises(ValueError, match='state_channels'):
        GloReUnit(1)
    with pytest.raises(ValueError, match='num_nodes'):
        GloReUnit(8, num_nodes=-2)
