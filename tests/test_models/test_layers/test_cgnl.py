"""CompactGeneralizedNonLocal2d (mmctx/models/layers/cgnl.py) against a direct, slow
sum over (channel, position) pairs of Yue et al., "Compact Generalized Non-local
Network", Eq. 5, with the dot-product kernel and the Taylor-expanded Gaussian of
Eq. 7 written term by term; weights shared, float64. The reference reads the
block's weight tensors only, never its modules."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmctx.models.layers import CompactGeneralizedNonLocal2d
from layer_helpers import randomise  # noqa: E402


def _conv1x1(weight, x):
    return torch.einsum('oc,bchw->bohw', weight[:, :, 0, 0], x)


def _reference(block, x):
    b, c, h, w = x.shape
    groups = block.groups
    t = _conv1x1(block.theta.weight, x).reshape(b, groups, -1)
    p = _conv1x1(block.phi.weight, x).reshape(b, groups, -1)
    g = _conv1x1(block.g.weight, x).reshape(b, groups, -1)
    length = t.shape[2]
    y = torch.zeros_like(t)
    for bi in range(b):
        for gi in range(groups):
            for a in range(length):
                acc = 0.0
                for m in range(length):
                    ta, pm = t[bi, gi, a].item(), p[bi, gi, m].item()
                    if block.kernel == 'dot':
                        f = ta * pm
                    else:  # Eq. 7: beta * sum_p (2 gamma)^p / p! a^p b^p, beta = exp(-2 gamma)
                        f = math.exp(-2 * block.gamma) * sum(
                            (2 * block.gamma)**k / math.factorial(k) * ta**k * pm**k
                            for k in range(block.order + 1))
                    if block.use_scale:
                        f /= math.sqrt(length)
                    acc += f * g[bi, gi, m].item()
                y[bi, gi, a] = acc
    # grouped 1x1 conv z: group gi maps its planes / groups inputs to its C / groups outputs
    y = y.reshape(b, block.planes, h, w)
    wz = block.z.weight[:, :, 0, 0]  # (C, planes / groups)
    cout, cin = c // groups, block.planes // groups
    z = torch.cat([torch.einsum('oc,bchw->bohw', wz[gi * cout:(gi + 1) * cout],
                                y[:, gi * cin:(gi + 1) * cin]) for gi in range(groups)], 1)
    return x + F.group_norm(z, groups, block.gn.weight, block.gn.bias, block.gn.eps)


@pytest.mark.parametrize('kernel,use_scale,order', [
    ('dot', False, 3), ('dot', True, 3), ('gaussian', False, 3), ('gaussian', True, 1)])
def test_cgnl_matches_the_pair_sum(kernel, use_scale, order):
    block = CompactGeneralizedNonLocal2d(4, planes=4, groups=2, kernel=kernel,
                                         use_scale=use_scale, order=order, gamma=0.1)
    block = randomise(block, 0, std=0.5).double()
    x = torch.randn(2, 4, 2, 3, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _reference(block, x), rtol=1e-10, atol=1e-10)


def test_taylor_gaussian_approaches_the_exact_kernel_at_unit_norm():
    """Eq. 7's beta = exp(-2 gamma) is exp(-gamma (a^2 + b^2)) at a^2 = b^2 = 1: there the
    expansion converges to the exact Gaussian exp(-gamma (a - b)^2) as P grows."""
    gamma = 0.3
    for a, b_ in ((1.0, 1.0), (1.0, -1.0), (-1.0, 1.0)):
        exact = math.exp(-gamma * (a - b_)**2)
        approx = [math.exp(-2 * gamma) * sum((2 * gamma)**k / math.factorial(k) * (a * b_)**k
                                             for k in range(p + 1)) for p in (1, 3, 12)]
        errors = [abs(v - exact) for v in approx]
        assert errors[2] < 1e-12 and errors[0] >= errors[1] >= errors[2]


def test_cgnl_bad_args():
    with pytest.raises(ValueError, match='kernel'):
        CompactGeneralizedNonLocal2d(8, kernel='cosine')
    with pytest.raises(ValueError, match='groups'):
        CompactGeneralizedNonLocal2d(8, planes=6, groups=4)
    with pytest.raises(ValueError, match='in_channels'):
        CompactGeneralizedNonLocal2d(8.0)
    with pytest.raises(ValueError, match='order'):
        CompactGeneralizedNonLocal2d(8, groups=2, order=-1)
