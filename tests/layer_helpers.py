"""Helpers shared by the block and config tests: random weights, the exact gradient check of
the one-step config walks and a tensor-size spy."""
import re

import torch
from torch.utils._python_dispatch import TorchDispatchMode


def randomise(module, seed, std=0.3):
    """Overwrite every parameter with N(0, std^2) values (the zero-initialised
    output convs / scales too, so that a test sees the whole block act)."""
    torch.manual_seed(seed)
    for p in module.parameters():
        with torch.no_grad():
            p.copy_(torch.randn_like(p) * std)
    return module


def randomise_zeros(model, seed=0, std=0.02):
    """Give every trainable parameter that is all zeros small N(0, std^2) values; returns
    their names.

    The blocks start as the identity (a zero last conv / norm / scale), so at step 0 no
    gradient reaches the parameters in front of them; with these values every connected
    parameter gets one, and :func:`missing_gradients` can be exact.
    """
    gen = torch.Generator().manual_seed(seed)
    names = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and not p.any():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
                names.append(name)
    return names


def missing_gradients(model, exempt=()):
    """Names of the trainable parameters whose gradient is missing, all zeros or not finite,
    those matching (``re.fullmatch``) a pattern of ``exempt`` left out."""
    missing = []
    for name, p in model.named_parameters():
        if not p.requires_grad or any(re.fullmatch(e, name) for e in exempt):
            continue
        g = p.grad
        if g is None or not g.any() or not torch.isfinite(g).all():
            missing.append(name)
    return missing


def assert_every_gradient(model, exempt=()):
    """Every trainable parameter but the ``exempt`` patterns has a finite, non-zero gradient;
    each pattern must match a trainable parameter (no stale exemption)."""
    missing = missing_gradients(model, exempt)
    assert not missing, f'{len(missing)} parameters get no gradient: {missing}'
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    for e in exempt:
        assert any(re.fullmatch(e, n) for n in names), f'exemption {e!r} matches nothing'


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out
