"""Causality of the gated PixelCNN by gradients: the output for sub-pixel d depends on every
sub-pixel before d in R->G->B raster order (no blind spot) and on nothing at or after d."""
from __future__ import annotations

import pytest
import torch

from genbench_pixelcnn.masks import channel_groups, channel_mask
from genbench_pixelcnn.network import GatedPixelCNN


def order(c: int, i: int, j: int, width: int, colours: int) -> int:
    """Position of sub-pixel (c, i, j) in the autoregressive order (raster over pixels, then colour)."""
    return (i * width + j) * colours + c


def dependency(net: GatedPixelCNN, shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """(D, D) sum over 8 random images of |d output_d / d input_e|, output_d a random projection of
    the K logits of sub-pixel d (several images, so that a ReLU that happens to be off for one
    image does not hide a dependence)."""
    c_, h_, w_ = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(8, *shape, generator=g, dtype=torch.float64).requires_grad_(True)
    logits = net(x)  # (1, C, K, H, W)
    r = torch.randn(net.levels, generator=g, dtype=torch.float64)
    d = c_ * h_ * w_
    dep = torch.zeros(d, d, dtype=torch.float64)
    for c in range(c_):
        for i in range(h_):
            for j in range(w_):
                (grad,) = torch.autograd.grad((logits[:, c, :, i, j] * r).sum(), x, retain_graph=True)
                grad = grad.abs().sum(0, keepdim=True)  # images are independent: per-image gradients
                row = order(c, i, j, w_, c_)
                for cc in range(c_):
                    for ii in range(h_):
                        for jj in range(w_):
                            dep[row, order(cc, ii, jj, w_, c_)] = grad[0, cc, ii, jj].abs()
    return dep


@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 4, 4)], ids=["grey-5x5", "rgb-4x4"])
def test_depends_on_exactly_the_earlier_subpixels(shape):
    c_, h_, w_ = shape
    torch.manual_seed(0)
    # reach = 2 + 1 + 1 = 4 rows up / columns left / columns right: covers the whole image, so the
    # dependency set must be *all* earlier sub-pixels (a blind spot would show as zeros above-right)
    net = GatedPixelCNN(c_, 4, channels=12, layers=3, kernel_size=3, first_kernel_size=5, head_channels=24).double()
    dep = dependency(net, shape)
    d = c_ * h_ * w_
    earlier = torch.ones(d, d).tril(diagonal=-1).bool()  # input e strictly before output d
    assert dep[~earlier].max() == 0.0, "an output depends on its own or a later sub-pixel"
    assert dep[earlier].min() > 1e-10, "an output ignores an earlier sub-pixel (blind spot or wrong channel mask)"


def test_dropout_in_training_mode_keeps_causality():
    """Dropout is element-wise (no position mixing): a training-mode pass still sees no later sub-pixel."""
    torch.manual_seed(0)
    net = GatedPixelCNN(3, 4, channels=12, layers=3, kernel_size=3, first_kernel_size=5, head_channels=24,
                        dropout=0.5).double()
    net.train(True)
    dep = dependency(net, (3, 4, 4))
    earlier = torch.ones(48, 48).tril(diagonal=-1).bool()
    assert dep[~earlier].max() == 0.0
    assert (dep[earlier] > 0).float().mean() > 0.5  # dropout thins the dependence but does not cut it
    net.train(False)  # and evaluation mode is deterministic (dropout off)
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    assert torch.equal(net(x), net(x))


def test_receptive_field_is_the_full_rectangle_above_no_blind_spot():
    """4 layers of 3x3 reach 4 rows up and 4 columns either side *as a rectangle*: the region
    above-right that a masked 3x3 PixelCNN misses (2016b, fig. 1) is seen, and nothing beyond."""
    torch.manual_seed(1)
    net = GatedPixelCNN(1, 3, channels=8, layers=4, kernel_size=3, first_kernel_size=3, head_channels=16).double()
    x = torch.rand(8, 1, 7, 10, dtype=torch.float64, requires_grad=True)
    i, j = 5, 4
    (grad,) = torch.autograd.grad(net(x)[:, 0, :, i, j].sum(), x)
    seen = grad.abs().sum(0)[0] > 0
    expected = torch.zeros(7, 10, dtype=torch.bool)
    expected[i - 5 : i, j - 4 : j + 5] = True   # rows above: 1 (shift) + 4 (layers) up, 4 columns each side
    expected[i, j - 4 : j] = True               # current row: 4 columns to the left
    assert torch.equal(seen, expected), f"dependence pattern\n{seen.int()}\nexpected\n{expected.int()}"


def test_mask_a_first_and_b_after():
    g_img, g_feat = channel_groups(3, 3), channel_groups(6, 3)
    assert g_feat.tolist() == [0, 0, 1, 1, 2, 2]
    a = channel_mask(g_feat, g_img, "A")
    b = channel_mask(g_feat, g_feat, "B")
    assert a[:2].sum() == 0 and a[2:4].tolist() == [[1, 0, 0]] * 2 and a[4:].tolist() == [[1, 1, 0]] * 2
    assert torch.equal(b, (g_feat[None, :] <= g_feat[:, None]).float())
    net = GatedPixelCNN(1, 2, channels=4, layers=3, kernel_size=3, first_kernel_size=5, head_channels=4)
    first, later = net.layers[0].h_conv.mask, net.layers[1].h_conv.mask
    assert first[:, :, 0, -1].sum() == 0 and first[:, :, 0, :-1].min() == 1  # grey mask A: no centre tap
    assert later.min() == 1  # grey mask B: centre tap kept
