"""Shared helpers of the OCNet head tests (``tests/test_models/test_decode_heads/
test_{base,pyramid,asp}_oc_head.py``): small heads with non-trivial BN
statistics, a loop-by-loop reference of OCNet's dense self-attention (Yuan et
al., "OCNet: Object Context for Semantic Segmentation", Eqs. 10-11), a
re-implementation of the authors' released SA block written from its
description, weight transfer into mmctx's modules, and the checks every head
passes (any batch and map, traced at one size and run at others)."""
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS

HEAD = dict(in_channels=32, channels=16, num_classes=5, in_index=0,
            norm_cfg=dict(type='BN'), dropout_ratio=0.0)


def build_head(cfg, seed=0):
    torch.manual_seed(seed)
    head = MODELS.build(dict(HEAD, **cfg))
    # non-trivial BN statistics, so that eval-mode BN is not an identity
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return head.eval()


def explicit_sa(sa, x):
    """OCNet Eqs. 10-11 with the N x N matrix formed by loops over queries."""
    b, _, h, w = x.shape
    q = sa.query(x).flatten(2)  # theta, (B, d, N)
    k = sa.key(x).flatten(2)  # phi
    v = sa.value(x).flatten(2)  # delta
    d = q.shape[1]
    out = torch.zeros_like(v)
    for i in range(h * w):
        weights = torch.softmax((q[:, :, i:i + 1] * k).sum(1) / d**0.5, dim=-1)  # (B, N)
        out[:, :, i] = (weights[:, None] * v).sum(-1)
    return sa.out(out.reshape(b, -1, h, w))  # rho


def cbr(i, o, k=1, d=1, bias=False):
    """A released conv -> BN -> ReLU (its convs in front of BN sometimes carry a bias)."""
    return nn.Sequential(nn.Conv2d(i, o, k, padding=d * (k // 2), dilation=d, bias=bias),
                         nn.BatchNorm2d(o), nn.ReLU())


class ReleasedSA(nn.Module):
    """The released dense SA block with ``scale``, from its description: the input
    max-pooled by ``scale`` (floor), theta / phi two 1x1 conv (bias) -> BN -> ReLU,
    delta and rho 1x1 convs with bias, logits scaled by d^-1/2, rho's output
    upsampled bilinearly with align_corners=True. Optional ``regions``: attention
    only inside s x s regions of floor(H / s) rows / columns, the remainder in
    the last ones (the released Pyramid-OC block), embeddings on the whole map."""

    def __init__(self, c, d, dv, scale=1, regions=1):
        super().__init__()
        self.d, self.scale, self.regions = d, scale, regions
        self.theta = nn.Sequential(cbr(c, d, bias=True), cbr(d, d, bias=True))
        self.phi = nn.Sequential(cbr(c, d, bias=True), cbr(d, d, bias=True))
        self.delta = nn.Conv2d(c, dv, 1)
        self.rho = nn.Conv2d(dv, c, 1)

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.scale > 1:
            x = F.max_pool2d(x, self.scale)
        q, k, v = self.theta(x), self.phi(x), self.delta(x)
        ctx = torch.zeros_like(v)
        s = self.regions
        hs, ws = x.shape[-2] // s, x.shape[-1] // s
        for i in range(s):
            for j in range(s):
                r = slice(i * hs, x.shape[-2] if i == s - 1 else (i + 1) * hs)
                c = slice(j * ws, x.shape[-1] if j == s - 1 else (j + 1) * ws)
                qq, kk, vv = (t[..., r, c].flatten(2) for t in (q, k, v))
                att = torch.softmax(torch.einsum('bdn,bdm->bnm', qq, kk) / self.d**0.5, -1)
                ctx[..., r, c] = torch.einsum('bnm,bcm->bcn', att, vv).reshape(
                    ctx[..., r, c].shape)
        z = self.rho(ctx)
        if self.scale > 1:
            z = F.interpolate(z, size=(h, w), mode='bilinear', align_corners=True)
        return z


def randomise(module, seed):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = torch.randn(m.weight.shape, generator=g) * 0.3
            if m.bias is not None:
                m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.3
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = 1 + 0.3 * torch.randn(m.weight.shape, generator=g)
            m.bias.data = 0.3 * torch.randn(m.bias.shape, generator=g)
            m.running_mean = 0.3 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
    return module.double().eval()


def calibrate(ref, run, x):
    """Running statistics of every BN from one training-mode ``run(x)``, so the
    eval-mode ReLUs see centred inputs (no dead branch hides a mismatch)."""
    bns = [m for m in ref.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = 1.0
        bn.train()
    with torch.no_grad():
        run(x)
    for bn in bns:
        bn.eval()


def load_cbr(cm, ref, in_perm=None):
    """A released conv(-bias) -> BN -> ReLU into an mmctx ConvModule; a conv bias
    in front of BN folds into the running mean (BN(Wx + b) with mean m is BN(Wx)
    with mean m - b)."""
    conv, bn = ref[0], ref[1]
    weight = conv.weight if in_perm is None else conv.weight[:, in_perm]
    cm.conv.weight.data.copy_(weight)
    cm.norm.load_state_dict(bn.state_dict())
    if conv.bias is not None:
        assert cm.conv.bias is None
        cm.norm.running_mean.data -= conv.bias


def load_sa(sa, ref):
    for mine, theirs in ((sa.query, ref.theta), (sa.key, ref.phi)):
        load_cbr(mine[0], theirs[0])
        load_cbr(mine[1], theirs[1])
    sa.value.load_state_dict(ref.delta.state_dict())
    sa.out.load_state_dict(ref.rho.state_dict())


def build_official(cfg):
    """A small ``variant='official'`` head in float64."""
    return MODELS.build(dict(HEAD, in_channels=12, channels=8, variant='official',
                             **cfg)).double()


#: (B, C, H, W) of the any-batch / any-map checks: empty batches, 1x1 and thin maps
SHAPES = [(0, 32, 5, 7), (0, 32, 1, 1), (2, 32, 1, 1), (2, 32, 1, 3)]


def check_any_batch_and_map(cfg, shape):
    """Forward and backward in training mode on ``shape`` (batch 0, 1x1 maps
    included), then an eval-mode forward."""
    head = build_head(cfg).train()
    x = torch.randn(*shape, requires_grad=True)
    out = head([x])
    assert out.shape == (shape[0], 5) + tuple(shape[2:]) and torch.isfinite(out).all()
    (out * torch.linspace(-1, 2, out.numel()).reshape(out.shape)).sum().backward()
    assert x.grad.shape == x.shape and torch.isfinite(x.grad).all()
    if shape[0] > 0:
        assert x.grad.abs().sum() > 0
    with torch.no_grad():
        assert head.eval()([x]).shape == out.shape


def check_traced_at_one_size_runs_at_others(cfg):
    """``torch.jit.trace`` at 12x12, run at other sizes: equal to the eager head."""
    head = build_head(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TracerWarnings
        traced = torch.jit.trace(head, ([torch.randn(2, 32, 12, 12)], ), check_trace=False)
    for hw in ((13, 17), (6, 9), (16, 16)):
        x = torch.randn(2, 32, *hw)
        with torch.no_grad():
            torch.testing.assert_close(traced([x]), head([x]), rtol=1e-5, atol=1e-5)


def check_trains(cfg):
    """One training step reaches every parameter."""
    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    head = build_head(cfg).train()
    head([x]).square().mean().backward()
    grads = [p.grad for p in head.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), cfg['type']
