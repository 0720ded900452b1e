"""CGNL block against an explicit (channel, position) pair sum of Yue et al. Eq. 5."""
import math

import pytest
import torch

pytestmark = pytest.mark.usefixtures('mmseg_scope')


def _reference(block, x, exact_gaussian=False):
    b, _, h, w = x.shape
    t = block.theta(x).view(b, block.groups, -1)
    p = block.phi(x).view(b, block.groups, -1)
    g = block.g(x).view(b, block.groups, -1)
    length = t.shape[2]
    y = torch.zeros_like(t)
    for bi in range(b):
        for gi in range(block.groups):
            for a in range(length):
                acc = 0.0
                for m in range(length):
                    ta, pm = t[bi, gi, a].item(), p[bi, gi, m].item()
                    if block.kernel == 'dot':
                        f = ta * pm
                    else:  # Taylor series written term by term, Yue et al. Eq. 7
                        f = math.exp(-2 * block.gamma) * sum(
                            (2 * block.gamma) ** k / math.factorial(k) * ta ** k * pm ** k
                            for k in range(block.order + 1))
                    if block.use_scale:
                        f /= math.sqrt(length)
                    acc += f * g[bi, gi, m].item()
                y[bi, gi, a] = acc
    return x + block.gn(block.z(y.view(b, -1, h, w)))


@pytest.mark.parametrize('kernel,use_scale', [('dot', False), ('dot', True), ('gaussian', False)])
def test_cgnl_matches_pair_sum(kernel, use_scale):
    from mmctx.models.decode_heads.cgnl_head import CompactGeneralizedNonLocal2d
    torch.manual_seed(0)
    block = CompactGeneralizedNonLocal2d(4, planes=4, groups=2, kernel=kernel,
                                         use_scale=use_scale, gamma=0.1).double()
    x = torch.randn(1, 4, 2, 3, dtype=torch.double)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _reference(block, x))


def test_cgnl_bad_args():
    from mmctx.models.decode_heads.cgnl_head import CompactGeneralizedNonLocal2d
    with pytest.raises(ValueError, match='kernel'):
        CompactGeneralizedNonLocal2d(8, kernel='cosine')
    with pytest.raises(ValueError, match='groups'):
        CompactGeneralizedNonLocal2d(8, planes=6, groups=4)


def test_cgnl_head_forward_backward():
    import mmctx  # noqa: F401
    from mmseg.registry import MODELS
    head = MODELS.build(dict(type='CGNLHead', in_channels=16, channels=8, groups=2,
                             num_classes=3, norm_cfg=dict(type='BN')))
    out = head([torch.randn(2, 16, 5, 5)])
    assert out.shape == (2, 3, 5, 5)
    out.sum().backward()
    assert head.cgnl_block.theta.weight.grad.abs().sum() > 0
