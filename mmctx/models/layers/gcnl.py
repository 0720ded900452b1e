"""Non-local block with global context and geometric priors (GCNL): Woo et al.,
"Global Context and Geometric Priors for Effective Non-Local Self-Attention".

§3.2 of the paper, for each head (``num_heads`` splits of the C^ = C/reduction
embedding channels):

* q, k, v = W_q X, W_k X, W_v X (Eq. 1); with ``sub_sample`` the keys and
  values are taken at stride 2: "a subsampling layer is often applied to k
  and v" (§3.1), as a 2x2 max-pool (``ceil_mode``, so a 1x1 map stays 1x1).
* context c = diag(sigmoid(W_c AvgPool(X))) (Eq. 4), relation (q^T c) k.
* relative position r = r_x + r_y (Eq. 6) with r_x = W_rx(R_X), R_X the
  sinusoidal encoding of the x-offset i - j (Eq. 7; likewise y), and the
  content-dependent bias q^T r = q^T r_x + q^T r_y (Eqs. 8-9): the two
  per-axis products, (H, W, W^) and (H, W, H^), broadcast-summed to the
  (N, N^) bias. No (N, N^, C^) tensor is formed.
* A = softmax((q^T c) k + q^T r) (Eq. 5), dropout on A during training,
  O = W_o(A v^T) (Eq. 3), output X + O with W_o zero-initialised.

With ``sub_sample`` the key positions sit at stride 2 and their offsets are
measured in input pixels (i - 2 j); without it this is Eq. 7 as written.

Where the sub-sampling sits (``pool_order``): the paper does not say, but its
EBFPN FLOPs do. Its Table 2 counts +1.05 G for BFPN over FPN (Libra R-CNN's
non-local block at P4, 1280 x 800: four 256 x 256 1x1 convs on 80 x 50
positions, 4 x 65536 x 4000 = 1.05 G multiply-adds, convolutions only) and
+0.66 G for EBFPN (e.g. RetinaNet 239.32 -> 239.98 G). Pooling the input
first, ``k = W_k(pool(X))`` and ``v = W_v(pool(X))``, puts two of the four
convs on 40 x 25 positions: 2 x 0.262 G + 2 x 0.066 G = 0.66 G. Pooling the
projections (``'after'``, the order of mmcv's ``NonLocal2d``) runs all four
convs at full size, 1.05 G, as much as BFPN's. ``'before'`` (the default) is the paper's order. (The W_r convs on the
encodings R, 0.15 G at this size, do not appear in the paper's count.)

Fast path (``impl='fused'``): q^T r_x depends on the key only through its
column x_j, so ``q_i^T r_x(i, j) = <qrx_i, onehot(x_j)>`` with qrx_i the
W^-vector of Eq. 8 (likewise for y). Appending [qry_i, qrx_i] to the
(contextualised) query and [onehot(y_j), onehot(x_j)] to the key turns all of
Eq. 5 into one plain dot product, so a single mask-free
``scaled_dot_product_attention`` computes it: neither the (N, N^) bias nor
the (N, N^) relation matrix is ever formed (flash / memory-efficient kernels
on CUDA, blocked kernel on CPU). The price is width: each logit is a dot
product over d + H^ + W^ channels instead of d (d = 32 -> 288 at a 128 x 128
map), so on a GPU in fp32 the fused block is still slower than the explicit
one (37.9 against 30.9 ms on an NVIDIA H200 at 1 x 512 x 128 x 128) while
holding 3 % of its memory; docs/benchmarks/README.md has the measurements.
``impl='explicit'`` forms the bias and the matrix, the reference.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from .attention import attention_matrix, check_impl, softmax_attention
from .checks import (check_channels, check_choice, check_divisible,
                     check_probability, check_reduction)

__all__ = ['GCNLBlock', 'relative_position_encoding']

POOL_ORDERS = ('before', 'after')


def relative_position_encoding(num_query: int, num_key: int, channels: int,
                               stride: int = 1, device=None) -> torch.Tensor:
    """R of the GCNL paper's Eq. 7, (channels, num_query, num_key).

    ``R[n, i, j] = sin((i - s j) / 1000^(2n/C))`` for even n and
    ``cos((i - s j) / 1000^(2(n-1)/C))`` for odd n, with C = 2 * channels
    (the encoding has C/2 channels) and s the key stride.
    """
    n = torch.arange(channels, device=device, dtype=torch.float32)
    exponent = torch.where(n % 2 == 0, 2 * n, 2 * (n - 1)) / (2 * channels)
    inv_wavelength = 1000.0**(-exponent)
    offset = (torch.arange(num_query, device=device, dtype=torch.float32)[:, None] -
              stride * torch.arange(num_key, device=device, dtype=torch.float32)[None])
    angle = inv_wavelength[:, None, None] * offset[None]
    return torch.where((n % 2 == 0)[:, None, None], angle.sin(), angle.cos())


@MODELS.register_module()
class GCNLBlock(nn.Module):
    """GCNL: non-local with contextualized diagonal matrix and 2D relative position.

    Args:
        in_channels: C.
        reduction: C^ = C / reduction embedding channels.
        num_heads: heads splitting C^ (default 8, the paper's choice).
        use_context: the diagonal context matrix c (Eq. 4).
        use_rel_pos: the relative position bias q^T r (Eqs. 5-9).
        attn_drop: dropout on the relation matrix A during training.
        sub_sample: max-pool keys and values by 2.
        pool_order: with ``sub_sample``, ``'before'`` pools X before W_k / W_v
            (the paper's FLOPs, module docstring) or ``'after'`` pools their
            outputs k, v.
        use_scale: scale all logits of Eq. 5 by d^-1/2 (not in the paper; off).
        impl: 'fused' (SDPA on one-hot augmented q / k), 'explicit' (formed
            matrix) or 'auto', which is 'fused': on the CPU it was the faster
            (231 against 471 ms at 1 x 512 x 32 x 64, 2 threads) and on an
            NVIDIA H200 it holds 3 % of the explicit path's memory, which is
            faster there only in fp32 (30.9 against 37.9 ms, at 24 620 MiB).
    """
    _abbr_ = 'gcnl'
    identity_start = True  # W_o zero (init_weights)

    def __init__(self,
                 in_channels: int,
                 reduction: int = 2,
                 num_heads: int = 8,
                 use_context: bool = True,
                 use_rel_pos: bool = True,
                 attn_drop: float = 0.0,
                 sub_sample: bool = False,
                 pool_order: str = 'before',
                 use_scale: bool = False,
                 impl: str = 'fused') -> None:
        super().__init__()
        check_channels('in_channels', in_channels)
        check_reduction(reduction, in_channels, exact=True)
        self.channels = in_channels // reduction
        check_divisible(self.channels, num_heads, 'in_channels // reduction')
        check_probability('attn_drop', attn_drop)
        check_choice('pool_order', pool_order, POOL_ORDERS)
        if use_rel_pos and in_channels < 2:
            raise ValueError(f'use_rel_pos needs in_channels >= 2 (an encoding '
                             f'of C/2 channels), got in_channels={in_channels}')
        self.in_channels = in_channels
        self.num_heads = num_heads
        self.head_channels = self.channels // num_heads
        self.use_context = use_context
        self.use_rel_pos = use_rel_pos
        self.attn_drop = attn_drop
        self.sub_sample = sub_sample
        self.pool_order = pool_order
        self.impl = check_impl(impl)
        self.scale = self.head_channels**-0.5 if use_scale else 1.0

        self.query = nn.Conv2d(in_channels, self.channels, 1)
        self.key = nn.Conv2d(in_channels, self.channels, 1)
        self.value = nn.Conv2d(in_channels, self.channels, 1)
        self.out = nn.Conv2d(self.channels, in_channels, 1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True) if sub_sample else nn.Identity()
        if use_context:
            self.context = nn.Conv2d(in_channels, self.channels, 1)  # W_c
        if use_rel_pos:
            self.pos_channels = in_channels // 2
            self.rel_x = nn.Conv2d(self.pos_channels, self.channels, 1)  # W_rx
            self.rel_y = nn.Conv2d(self.pos_channels, self.channels, 1)  # W_ry
        self.init_weights()

    def init_weights(self) -> None:
        """Zero W_o (weight and bias), so the block starts as the identity.

        The other convs keep their initialisation (PyTorch's at construction,
        or what an enclosing module's ``init_cfg`` set before calling this,
        as mmengine's ``BaseModule.init_weights`` does for its children).
        """
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, C^, h, w) -> (B, heads, h*w, d)."""
        b, _, h, w = t.shape
        # explicit d: a batch of 0 has no -1 to infer
        return t.reshape(b, self.num_heads, self.head_channels,
                         h * w).transpose(-2, -1)

    def _axis_embedding(self, conv: nn.Conv2d, num_query: int, num_key: int,
                        stride: int, ref: torch.Tensor) -> torch.Tensor:
        """W_r(R) of Eq. 6 per head: (heads, d, num_query, num_key)."""
        enc = relative_position_encoding(num_query, num_key, self.pos_channels,
                                         stride, ref.device).to(ref.dtype)
        r = conv(enc[None])[0]  # (C^, num_query, num_key)
        return r.reshape(self.num_heads, self.head_channels, num_query, num_key)

    def axis_products(self, q: torch.Tensor, key_hw):
        """q^T r_y and q^T r_x of Eqs. 9 and 8 per head, flattened queries.

        Returns (B, heads, H*W, H^) and (B, heads, H*W, W^).
        """
        b, _, h, w = q.shape
        kh, kw = key_hw
        stride = 2 if self.sub_sample else 1
        qh = q.reshape(b, self.num_heads, self.head_channels, h, w)
        r_x = self._axis_embedding(self.rel_x, w, kw, stride, q)  # (n, d, W, W^)
        r_y = self._axis_embedding(self.rel_y, h, kh, stride, q)  # (n, d, H, H^)
        qrx = torch.einsum('bndyx,ndxj->bnyxj', qh, r_x)  # Eq. 8: (B, n, H, W, W^)
        qry = torch.einsum('bndyx,ndyi->bnyxi', qh, r_y)  # Eq. 9: (B, n, H, W, H^)
        return (qry.reshape(b, self.num_heads, h * w, kh),
                qrx.reshape(b, self.num_heads, h * w, kw))

    def position_bias(self, q: torch.Tensor, key_hw) -> torch.Tensor:
        """q^T r (Eqs. 8-9), (B, heads, H*W, H^*W^), from per-axis products.

        Formed explicitly (the reference path and :meth:`get_attention`).

        Args:
            q: (B, C^, H, W) queries.
            key_hw: (H^, W^) of the key grid.
        """
        b, _, h, w = q.shape
        kh, kw = key_hw
        qry, qrx = self.axis_products(q, key_hw)
        bias = qry[..., :, None] + qrx[..., None, :]  # (B, n, HW, H^, W^)
        return bias.reshape(b, self.num_heads, h * w, kh * kw)

    def _embeddings(self, x: torch.Tensor):
        """q (B, C^, H, W), q^T c, k and v as heads, and the key grid size."""
        q = self.query(x)
        if self.pool_order == 'before':
            x_kv = self.pool(x)
            k, v = self.key(x_kv), self.value(x_kv)
        else:
            k, v = self.pool(self.key(x)), self.pool(self.value(x))
        qc = q
        if self.use_context:
            c = torch.sigmoid(self.context(x.mean(dim=(2, 3), keepdim=True)))
            qc = q * c  # q^T c with c diagonal (Eq. 4)
        return q, self._heads(qc), self._heads(k), self._heads(v), k.shape[-2:]

    def _relation_inputs(self, x: torch.Tensor):
        """Explicit form: heads of q^T c, k, v and the formed bias q^T r."""
        q, qc, k, v, key_hw = self._embeddings(x)
        bias = None
        if self.use_rel_pos:  # scaled like the content logits it is added to
            bias = self.position_bias(q, key_hw) * self.scale
        return qc, k, v, bias

    def _augmented_inputs(self, x: torch.Tensor):
        """Fused form: [q^T c, qry, qrx] and [k, onehot(y), onehot(x)].

        Their dot product is (q^T c) k + q^T r_y + q^T r_x (Eq. 5). Padded
        with zeros to a multiple of 8 channels (CUDA kernels' alignment);
        ``softmax_attention`` pads v to the same width only where a kernel
        needs one width (the CPU's; on CUDA see ``pads_to_one_width``): the
        q / k width d + H^ + W^ is several times v's d.
        """
        q, qc, k, v, (kh, kw) = self._embeddings(x)
        if not self.use_rel_pos:
            return qc, k, v
        qry, qrx = self.axis_products(q, (kh, kw))
        # [onehot(y_j), onehot(x_j)] of key j = y_j W^ + x_j, from identity
        # matrices (sizes stay symbolic under torch.jit.trace / ONNX export,
        # where F.one_hot's num_classes would be frozen)
        eye_y = torch.eye(kh, dtype=k.dtype, device=x.device)
        eye_x = torch.eye(kw, dtype=k.dtype, device=x.device)
        onehot = torch.cat([eye_y[:, None].expand(kh, kw, kh),
                            eye_x[None].expand(kh, kw, kw)], -1)
        onehot = onehot.reshape(kh * kw, kh + kw).expand(*k.shape[:2], -1, -1)
        q_aug = torch.cat([qc, qry.to(qc.dtype), qrx.to(qc.dtype)], -1)
        k_aug = torch.cat([k, onehot], -1)
        pad = -q_aug.shape[-1] % 8
        return F.pad(q_aug, (0, pad)), F.pad(k_aug, (0, pad)), v

    def get_attention(self, x: torch.Tensor) -> torch.Tensor:
        """A of Eq. 5, (B, heads, H*W, H^*W^)."""
        q, k, _, bias = self._relation_inputs(x)
        return attention_matrix(q, k, self.scale, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        drop = self.attn_drop if self.training else 0.0
        if self.impl in ('fused', 'auto'):
            q, k, v = self._augmented_inputs(x)
            y = softmax_attention(q, k, v, self.scale, None, drop, 'fused')
        else:
            q, k, v, bias = self._relation_inputs(x)
            y = softmax_attention(q, k, v, self.scale, bias, drop, 'explicit')
        y = y.transpose(-2, -1).reshape(b, self.channels, h, w)
        return x + self.out(y)
