"""What the context blocks of a model attend to: statistics and maps.

* :func:`avg_cosine_distance` is Cao et al. (GCNet) §3.2.2's measure,
  ``avg_dist = 1/Np^2 sum_i sum_j (1 - cos(v_i, v_j)) / 2``.
* :class:`BlockRecorder` hooks every mmctx block of a model (anything with
  the block API's ``get_attention``) and keeps each call's input and output.
* :func:`block_statistics` gives a block call's distances over positions of
  its input, its attention maps and its output before fusion (``z - x``),
  the 'input' / 'att' / 'output' columns of Tables 1, 2 and 4 of Cao et al.,
  *Global Context Networks*; for a non-local block also the 'key' (W_k x),
  'query' (W_q x) and 'prod' (rows of the pairwise products q_i . k_j)
  columns of its Table 3.
* :func:`query_attention_map` gives the key-position map of one query.
"""
import math
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    'avg_cosine_distance', 'context_blocks', 'BlockRecorder',
    'block_statistics', 'key_grid', 'query_attention_map'
]


def avg_cosine_distance(vectors: torch.Tensor) -> float:
    """Mean of ``(1 - cos(v_i, v_j)) / 2`` over all ordered pairs of rows.

    With unit rows u_i, ``sum_ij cos = |sum_i u_i|^2``, so the mean over
    the Np^2 pairs needs O(Np) work, not O(Np^2). A zero row has cosine 0
    with every row (distance 1/2), and distance 0 with itself.

    Args:
        vectors: (Np, D), one feature vector per position.
    """
    units = F.normalize(vectors.double(), dim=1)
    n = units.shape[0]
    mean_cos = units.sum(0).pow(2).sum() / n**2
    # a zero row contributes cos(v_i, v_i) = 0 above, but its distance to itself is 0
    zero_rows = int((units.norm(dim=1) == 0).sum())
    return float((1 - mean_cos) / 2 - zero_rows / (2 * n**2))


def context_blocks(model: nn.Module) -> 'OrderedDict[str, nn.Module]':
    """The blocks of ``model`` that follow the mmctx block API, by module name.

    Blocks nested in another block (e.g. the attention inside an object
    context pooling) are left out: the outer block is the one analysed.
    """
    blocks = OrderedDict()
    for name, module in model.named_modules():
        if not callable(getattr(module, 'get_attention', None)):
            continue
        if any(name.startswith(outer + '.') for outer in blocks):
            continue
        blocks[name] = module
    return blocks


class BlockRecorder:
    """Context manager keeping the input and output of every block call.

    ``records[name]`` is a list of ``(input, output)`` pairs, detached, one
    per forward call of the block ``name``.
    """

    def __init__(self, model: nn.Module) -> None:
        self.blocks = context_blocks(model)
        if not self.blocks:
            raise ValueError('the model has no mmctx context block '
                             '(no module with get_attention)')
        self.records: Dict[str, List[Tuple[torch.Tensor, torch.Tensor]]] = {
            name: [] for name in self.blocks}
        self._handles = []

    def __enter__(self) -> 'BlockRecorder':
        for name, block in self.blocks.items():
            self._handles.append(block.register_forward_hook(self._hook(name)))
        return self

    def _hook(self, name):

        def hook(module, args, output):
            self.records[name].append((args[0].detach(), output.detach()))

        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


@torch.no_grad()
def block_statistics(block: nn.Module, x: torch.Tensor,
                     output: torch.Tensor) -> Dict[str, float]:
    """GCNet §3.2.2 distances of one block call, averaged over the batch.

    'input': over positions of x; 'att': over the attention maps of the
    query positions (rows of ``get_attention``, heads averaged); 'output':
    over positions of ``output - x`` (the block's output before fusion),
    reported only when the block is residual (output shaped like x).
    For a non-local block (Fig. 3 of the paper): 'key' and 'query' over the
    positions of W_k x and W_q x (Embedded Gaussian / dot product /
    concatenation, which have them) and 'prod' over the rows of the pairwise
    products q_i . k_j before normalisation (x_i . x_j for Gaussian).
    """
    att = block.get_attention(x).float().mean(dim=1)  # (B, Nq, Nk)
    stats = dict(input=[], att=[], output=[], key=[], query=[], prod=[])
    qk = getattr(block, '_qk', None)
    q, k = qk(x) if callable(qk) and hasattr(block, 'mode') else (None, None)
    for i in range(x.shape[0]):
        stats['input'].append(avg_cosine_distance(x[i].flatten(1).t()))
        stats['att'].append(avg_cosine_distance(
            att[i].expand(x[i, 0].numel(), -1) if att.shape[1] == 1 else att[i]))
        if output.shape == x.shape:
            stats['output'].append(
                avg_cosine_distance((output[i] - x[i]).flatten(1).t()))
        if q is not None:
            qi, ki = q[i].float().flatten(0, -2), k[i].float().flatten(0, -2)  # (N, Ci)
            if hasattr(block, 'theta'):
                stats['query'].append(avg_cosine_distance(qi))
                stats['key'].append(avg_cosine_distance(ki))
            stats['prod'].append(avg_cosine_distance(qi @ ki.t()))
    return {name: sum(v) / len(v) for name, v in stats.items() if v}


def key_grid(num_keys: int, query_hw: Tuple[int, int]) -> Tuple[int, int]:
    """The (h, w) grid of ``num_keys`` key positions for a query map of ``query_hw``.

    Keys are the query grid itself or a sub-sampled copy of it (stride s,
    ceil-rounded, e.g. the max-pooled keys of non-local blocks).
    """
    h, w = query_hw
    for stride in (1, 2, 4, 8):
        for rnd in (math.ceil, math.floor):
            kh, kw = rnd(h / stride), rnd(w / stride)
            if kh * kw == num_keys:
                return kh, kw
    raise ValueError(f'cannot lay {num_keys} keys on a grid for a {h}x{w} query map')


@torch.no_grad()
def query_attention_map(block: nn.Module, x: torch.Tensor,
                        point: Tuple[float, float]) -> torch.Tensor:
    """The attention map (heads averaged) of the query nearest ``point``.

    Args:
        block: a block with ``get_attention``.
        x: its input, (1, C, H, W).
        point: (x, y) in relative coordinates of the feature map, in [0, 1).

    Returns:
        (h_k, w_k) map over key positions, summing to 1 for softmax blocks.
    """
    h, w = x.shape[-2:]
    qx = min(int(point[0] * w), w - 1)
    qy = min(int(point[1] * h), h - 1)
    att = block.get_attention(x)[0].float().mean(0)  # (Nq, Nk)
    row = att[0] if att.shape[0] == 1 else att[qy * w + qx]
    return row.reshape(key_grid(row.numel(), (h, w)))
