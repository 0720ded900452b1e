"""SA / ISA / OCP (seed 004 §3.2) against slow references of Eqs. 9-21."""
import pytest
import torch
from mmengine.registry import MODELS

import mmctx  # noqa: F401
from mmctx.analysis.memory import peak_memory


def _build(cfg):
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    # random conv weights and biases; BN affine stays (1, 0) so no ReLU is dead
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            torch.nn.init.normal_(mod.weight, std=0.3)
            if mod.bias is not None:
                torch.nn.init.normal_(mod.bias, std=0.3)
    return m.eval()


def _sa_reference(sa, x):
    """Eqs. 10-11 per image: W = softmax(theta phi^T / sqrt(d)), Z = rho(W delta)."""
    b, c, h, w = x.shape
    theta = sa.query(x).flatten(2)  # (B, d, N)
    phi = sa.key(x).flatten(2)
    delta = sa.value(x).flatten(2)
    d = theta.shape[1]
    out = []
    for i in range(b):
        n = h * w
        logits = torch.empty(n, n)
        for a in range(n):
            for k in range(n):
                logits[a, k] = (theta[i, :, a] * phi[i, :, k]).sum() / d**0.5
        weights = logits.softmax(-1)
        out.append((delta[i] @ weights.t()).reshape(-1, h, w))
    return sa.out(torch.stack(out))


def _isa_reference(isa, x):
    """Eq. 9 with explicit block-sparse masks in the original position order.

    As in Algorithm 1, row i = q_h * P_h + p_h (columns alike): global groups
    share (p_h, p_w) = (i mod P_h, j mod P_w), local groups share
    (q_h, q_w) = (i // P_h, j // P_w). Each stage is SA over all N positions
    with the logits of pairs outside a group masked out (W^g, W^l of Eq. 16).
    """
    ph, pw = isa.groups
    h, w = x.shape[-2:]
    hp, wp = -(-h // ph) * ph, -(-w // pw) * pw
    y = torch.nn.functional.pad(x, (0, wp - w, 0, hp - h))
    rows = torch.arange(hp).repeat_interleave(wp)
    cols = torch.arange(wp).repeat(hp)
    same = {
        'global': ((rows[:, None] % ph == rows[None] % ph) &
                   (cols[:, None] % pw == cols[None] % pw)),
        'local': ((rows[:, None] // ph == rows[None] // ph) &
                  (cols[:, None] // pw == cols[None] // pw)),
    }
    for stage in isa.order.split('_'):
        sa = isa.global_relation if stage == 'global' else isa.local_relation
        theta, phi = sa.query(y).flatten(2), sa.key(y).flatten(2)
        delta = sa.value(y).flatten(2)
        logits = torch.einsum('bdn,bdm->bnm', theta, phi) / theta.shape[1]**0.5
        logits = logits.masked_fill(~same[stage], float('-inf'))
        z = torch.einsum('bnm,bdm->bdn', logits.softmax(-1), delta)
        y = sa.out(z.reshape(z.shape[0], -1, hp, wp))
    return y[..., :h, :w]


@pytest.mark.parametrize('impl', ['fused', 'explicit'])
@pytest.mark.parametrize('hw', [(1, 1), (3, 5), (4, 4)])
def test_sa_matches_eq10_11(impl, hw):
    sa = _build(dict(type='SelfAttention2d', in_channels=6, impl=impl))
    x = torch.randn(2, 6, *hw)
    with torch.no_grad():
        assert torch.allclose(sa(x), _sa_reference(sa, x), atol=1e-4)
        assert sa.get_attention(x).shape == (2, 1, hw[0] * hw[1], hw[0] * hw[1])


@pytest.mark.parametrize('order', ['global_local', 'local_global'])
@pytest.mark.parametrize('hw,groups', [((8, 6), (4, 3)), ((7, 5), (2, 2)),
                                       ((1, 1), (8, 8)), ((6, 9), (3, 3))])
def test_isa_equals_block_sparse_dense_attention(order, hw, groups):
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4,
                      groups=groups, order=order))
    x = torch.randn(2, 4, *hw)
    with torch.no_grad():
        out = isa(x)
        assert out.shape == x.shape
        assert torch.allclose(out, _isa_reference(isa, x), atol=1e-4)


def test_isa_composite_relation_is_a_stochastic_matrix_restricted_by_eq9():
    isa = _build(dict(type='InterlacedSparseSelfAttention', in_channels=4,
                      groups=(2, 2)))
    x = torch.randn(1, 4, 4, 4)
    with torch.no_grad():
        w = isa.get_attention(x)[0, 0]
    assert w.shape == (16, 16)
    assert torch.allclose(w.sum(-1), torch.ones(16), atol=1e-5)
    # global then local: every position reaches every other (dense relation)
    assert (w > 0).all()
    isa.order = 'local_global'
    with torch.no_grad():
        assert (isa.get_attention(x)[0, 0] > 0).all()


@pytest.mark.parametrize('attention', ['sa', 'isa'])
def test_fused_equals_explicit_with_gradients_and_all_params_learn(attention):
    extra = dict(groups=(2, 2)) if attention == 'isa' else {}
    outs, grads = [], []
    for impl in ('fused', 'explicit'):
        m = _build(dict(type='ObjectContextPooling', in_channels=4,
                        attention=attention, impl=impl, **extra)).train()
        x = torch.randn(2, 4, 5, 6, generator=torch.Generator().manual_seed(1),
                        requires_grad=True)
        out = m(x)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        outs.append(out.detach())
        grads.append(x.grad)
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.allclose(outs[0], outs[1], atol=1e-4)
    assert torch.allclose(grads[0], grads[1], atol=1e-4)


def test_bf16_autocast_runs():
    m = MODELS.build(dict(type='InterlacedSparseSelfAttention', in_channels=8,
                          groups=(2, 2))).eval()
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad():
        out = m(torch.randn(1, 8, 5, 7))
    assert out.shape == (1, 8, 5, 7) and torch.isfinite(out.float()).all()


@pytest.mark.parametrize('cfg,word', [
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, order='zigzag'), 'order'),
    (dict(type='InterlacedSparseSelfAttention', in_channels=4, groups=(0, 2)), 'groups'),
    (dict(type='ObjectContextPooling', in_channels=4, attention='ccnet'), 'attention'),
    (dict(type='SelfAttention2d', in_channels=4, impl='flash'), 'impl'),
])
def test_bad_arguments_name_themselves(cfg, word):
    with pytest.raises(ValueError, match=word):
        MODELS.build(cfg)


def test_isa_never_forms_the_dense_matrix_at_96x96():
    x = torch.randn(1, 16, 96, 96)
    sa = MODELS.build(dict(type='SelfAttention2d', in_channels=16)).eval()
    isa = MODELS.build(dict(type='InterlacedSparseSelfAttention', in_channels=16,
                            impl='explicit')).eval()
    dense_bytes = (96 * 96)**2 * 4
    with torch.no_grad():
        sa.impl = 'explicit'
        sa_peak = peak_memory(lambda: sa(x))
        isa_peak = peak_memory(lambda: isa(x))
    assert sa_peak >= dense_bytes
    # ISA's largest relation is (HW/64)^2 per group: 1/64 of the dense one
    assert isa_peak < dense_bytes / 20
