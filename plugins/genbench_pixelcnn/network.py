"""The gated PixelCNN network (van den Oord et al. 2016b, "Conditional Image Generation with
PixelCNN Decoders", sec. 2.1-2.2, fig. 2), without conditioning.

Two stacks remove the blind spot of the masked 3x3 PixelCNN:

* the vertical stack sees the rows above: a (k//2 + 1) x k convolution over rows i-k//2 .. i
  (the input is padded on top only).  Its features at row i may depend on the current row,
  so they reach the horizontal stack only after a shift down by one row;
* the horizontal stack sees the current row left of (and, channel-masked, at) the current
  pixel: a 1 x (k//2 + 1) convolution over columns j-k//2 .. j (``masks.horizontal_conv``).

Each layer applies the gated activation unit (2016b, eq. 2)

    y = tanh(W_f * x) (.) sigmoid(W_g * x)

to both stacks; the horizontal stack receives ``1x1(shift_down(W * v))`` from the vertical
pre-activations and has a residual connection (2016b, fig. 2):

    h_{l+1} = h_l + 1x1( tanh(a) (.) sigmoid(b) ),  [a, b] = W_h * h_l + 1x1(shift_down(W_v * v_l)).

The first layer uses mask A at the current pixel and no residual (its input is the image
itself); later layers use mask B.  The head (ReLU, 1x1, ReLU, 1x1; all mask B) gives K logits
per sub-pixel: a K-way softmax over the data's levels (2016a, sec. 5.3).

The receptive field of the output at (i, j) is exactly the sub-pixels before it: every pixel in
rows < i (within the kernel's reach, growing by k//2 per layer), the pixels left of j in row i,
and the earlier colours of pixel (i, j).  ``tests/plugins/pixelcnn`` checks this by gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench_pixelcnn.masks import channel_groups, horizontal_conv, pointwise_conv


def shift_down(t: Tensor) -> Tensor:
    """Move every row down by one (row 0 becomes zeros): features at row i then depend on rows < i."""
    return F.pad(t, (0, 0, 1, 0))[:, :, :-1, :]


def gate(t: Tensor) -> Tensor:
    """Gated activation unit, 2016b eq. 2: split channels in halves [a, b] -> tanh(a) * sigmoid(b)."""
    a, b = t.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One layer of both stacks (2016b, fig. 2); ``first`` selects mask A and drops the residual."""

    def __init__(self, in_channels: int, channels: int, kernel_size: int, colours: int, first: bool,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.k, self.first = kernel_size, first
        g_in = channel_groups(in_channels, colours)
        g_hidden = channel_groups(channels, colours)
        g_gates = torch.cat([g_hidden, g_hidden])  # the tanh half and the sigmoid half line up by group
        self.v_conv = nn.Conv2d(in_channels, 2 * channels, (kernel_size // 2 + 1, kernel_size))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)  # sees only rows above: needs no mask
        self.h_conv = horizontal_conv(in_channels, 2 * channels, kernel_size, g_in, g_gates, "A" if first else "B")
        self.h_out = pointwise_conv(channels, channels, g_hidden, g_hidden)
        # element-wise, so it mixes no positions and keeps the masks' causality (PixelCNN++ drops out
        # inside its residual blocks the same way, Salimans et al. 2017, Sec. 2.6)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def vertical(self, v: Tensor) -> tuple[Tensor, Tensor]:
        """(pre-activation W_v * v over rows i-k//2 .. i, gated output for the next vertical layer)."""
        r = self.k // 2
        pre = self.v_conv(F.pad(v, (r, r, r, 0)))
        return pre, gate(pre)

    def link(self, pre_above: Tensor) -> Tensor:
        """The vertical -> horizontal connection; ``pre_above`` at row i must hold the pre-activation of row i-1."""
        return self.v_to_h(pre_above)

    def horizontal(self, h: Tensor, link: Tensor) -> Tensor:
        """h_{l+1} = [h_l +] 1x1(gate(W_h * h_l + link)) over columns j-k//2 .. j (input padded left)."""
        out = self.h_out(self.dropout(gate(self.h_conv(F.pad(h, (self.k // 2, 0, 0, 0))) + link)))
        return out if self.first else h + out


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN: logits (B, C, K, H, W) of p(x_{c,i,j} | everything before it in R->G->B raster order)."""

    def __init__(
        self,
        colours: int,
        levels: int,
        channels: int = 64,
        layers: int = 8,
        kernel_size: int = 3,
        first_kernel_size: int = 7,
        head_channels: int = 256,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.colours, self.levels = colours, levels
        self.layers = nn.ModuleList(
            [GatedLayer(colours, channels, first_kernel_size, colours, first=True, dropout=dropout)]
            + [GatedLayer(channels, channels, kernel_size, colours, first=False, dropout=dropout)
               for _ in range(layers - 1)]
        )
        g_hidden, g_head = channel_groups(channels, colours), channel_groups(head_channels, colours)
        self.head1 = pointwise_conv(channels, head_channels, g_hidden, g_head)
        self.head2 = pointwise_conv(head_channels, colours * levels, g_head, channel_groups(colours * levels, colours))
        # rows above / columns to the left that the output at one position can depend on
        self.reach = sum(layer.k // 2 for layer in self.layers)

    @staticmethod
    def encode(x: Tensor) -> Tensor:
        """Network input: values k/(K-1) in [0, 1] -> [-1, 1]."""
        return 2.0 * x - 1.0

    def vertical_preacts(self, x: Tensor) -> list[Tensor]:
        """Pre-activations W_v * v_l of every layer (unshifted): at row r they depend on input rows <= r."""
        v, out = self.encode(x), []
        for layer in self.layers:
            pre, v = layer.vertical(v)
            out.append(pre)
        return out

    def links(self, preacts: list[Tensor]) -> list[Tensor]:
        """Vertical -> horizontal inputs of every layer for the whole image (the one-row shift applied)."""
        return [layer.link(shift_down(pre)) for layer, pre in zip(self.layers, preacts)]

    def horizontal(self, x: Tensor, links: list[Tensor]) -> Tensor:
        """Logits (B, C, K, H', W') of the horizontal stack and head over rows/columns of ``x`` and ``links``.

        Every operation is per row, so a single row (or a slice of columns of it) can be run alone.
        """
        h = self.encode(x)
        for layer, link in zip(self.layers, links):
            h = layer.horizontal(h, link)
        logits = self.head2(F.relu(self.head1(F.relu(h))))
        b, _, hh, ww = logits.shape
        return logits.view(b, self.colours, self.levels, hh, ww)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, C, K, H, W) for images ``x`` (B, C, H, W) with values in [0, 1]."""
        return self.horizontal(x, self.links(self.vertical_preacts(x)))

    def row_links(self, x: Tensor, row: int) -> list[Tensor]:
        """The links for row ``row`` alone, (B, 2F, 1, W) each, from rows ``row - 1 - reach .. row - 1`` of ``x``.

        Equal to ``[l[:, :, row:row+1] for l in self.links(self.vertical_preacts(x))]``: the
        pre-activation at row ``row - 1`` depends on no row above ``row - 1 - reach``, so cropping
        the rows above that (and everything from ``row`` down) changes nothing.
        """
        if row == 0:
            b, _, _, w = x.shape
            return [layer.link(x.new_zeros(b, layer.v_to_h.in_channels, 1, w)) for layer in self.layers]
        start = max(0, row - 1 - self.reach)
        preacts = self.vertical_preacts(x[:, :, start:row])
        return [layer.link(pre[:, :, -1:]) for layer, pre in zip(self.layers, preacts)]
