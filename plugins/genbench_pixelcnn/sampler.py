"""Autoregressive sampling from a gated PixelCNN, one sub-pixel at a time in R->G->B raster order.

Each sub-pixel is drawn from its K-way softmax with the Gumbel-max trick,
``argmax_k (logit_k + G_k)``, ``G_k = -log(-log U_k)``, ``U_k ~ Uniform(0, 1)``
(an exact categorical draw).  The uniforms come from the caller's CPU generator, one
(n, C, W, K) block per row in row order, and are then moved to the device; both
samplers below consume them identically, so they draw the same images from the same
generator.

* ``sample_naive`` runs the whole network on the whole image for every sub-pixel
  (C*H*W full evaluations) — the textbook loop.
* ``sample_fast`` uses the structure of the two stacks: the vertical stack's links for
  row i depend only on rows < i, which are complete when row i starts, so they are
  computed once per row (and only on the ``reach`` rows above that can matter); the
  horizontal stack and head are per-row operations, so for each sub-pixel only the
  current row, cropped to the ``reach`` columns on the left, is evaluated.  The logits
  it uses are the same numbers the full network gives (``network.GatedPixelCNN.row_links``).

Both count C*H*W network evaluations per image (one per sub-pixel).  ``known``/``mask``
turn either into completion: sub-pixels with ``mask`` True keep the value of ``known``
(and rows/sub-pixels known for the whole batch are not computed).
"""
from __future__ import annotations

import torch
from torch import Tensor

from genbench_pixelcnn.network import GatedPixelCNN


def gumbel_row(n: int, colours: int, width: int, levels: int, generator: torch.Generator | None,
               device: torch.device, dtype: torch.dtype) -> Tensor:
    """Gumbel(0, 1) noise (n, C, W, K), drawn on the CPU with ``generator``, then moved to ``device``."""
    u = torch.rand(n, colours, width, levels, generator=generator, dtype=torch.float64)
    g = -torch.log(-torch.log(u.clamp_min(1e-300)))
    return g.to(device=device, dtype=dtype)


def _start(net: GatedPixelCNN, n: int, shape: tuple[int, int, int], known: Tensor | None, mask: Tensor | None,
           device: torch.device) -> tuple[Tensor, Tensor]:
    """The canvas (known values where given, zeros elsewhere) and the (n, C, H, W) bool mask of known sub-pixels."""
    dtype = next(net.parameters()).dtype
    x = torch.zeros(n, *shape, device=device, dtype=dtype)
    if mask is None:
        return x, torch.zeros(n, *shape, dtype=torch.bool, device=device)
    if known is None:
        raise ValueError("a completion mask needs the known values")
    m = mask.to(device=device, dtype=torch.bool).expand(n, *shape)
    x = torch.where(m, known.to(device=device, dtype=dtype).expand(n, *shape), x)
    return x, m


def _draw(logits: Tensor, noise: Tensor, levels: int) -> Tensor:
    """Gumbel-max draw of one level per row of ``logits`` (n, K), as a value k/(K-1)."""
    return (logits + noise).argmax(dim=-1).to(logits.dtype) / (levels - 1)


def sample_naive(net: GatedPixelCNN, n: int, shape: tuple[int, int, int], generator: torch.Generator | None,
                 device: torch.device, known: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    """Reference sampler: a full forward pass for every sub-pixel. Returns (n, C, H, W) values in [0, 1]."""
    c_, h_, w_ = shape
    x, m = _start(net, n, shape, known, mask, device)
    for i in range(h_):
        noise = gumbel_row(n, c_, w_, net.levels, generator, device, x.dtype)
        for j in range(w_):
            for c in range(c_):
                if bool(m[:, c, i, j].all()):
                    continue
                logits = net(x)[:, c, :, i, j]
                x[:, c, i, j] = torch.where(m[:, c, i, j], x[:, c, i, j], _draw(logits, noise[:, c, j], net.levels))
    return x


def sample_fast(net: GatedPixelCNN, n: int, shape: tuple[int, int, int], generator: torch.Generator | None,
                device: torch.device, known: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    """Row-cached sampler: vertical links once per row, horizontal stack on one cropped row per sub-pixel."""
    c_, h_, w_ = shape
    x, m = _start(net, n, shape, known, mask, device)
    for i in range(h_):
        noise = gumbel_row(n, c_, w_, net.levels, generator, device, x.dtype)
        if bool(m[:, :, i].all()):
            continue
        links = net.row_links(x, i)
        for j in range(w_):
            s = max(0, j - net.reach)
            for c in range(c_):
                if bool(m[:, c, i, j].all()):
                    continue
                logits = net.horizontal(x[:, :, i : i + 1, s : j + 1], [l[:, :, :, s : j + 1] for l in links])
                value = _draw(logits[:, c, :, 0, -1], noise[:, c, j], net.levels)
                x[:, c, i, j] = torch.where(m[:, c, i, j], x[:, c, i, j], value)
    return x
