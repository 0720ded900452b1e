"""Helpers shared by the block tests: random weights and a tensor-size spy."""
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
