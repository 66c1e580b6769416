"""RePaint and SDEdit (genbench.diffusion.repaint) with a perfect denoiser on a tiny, exactly known distribution.

Data: two sub-pixels with 3 levels {-1, 0, 1} each and a strongly correlated joint P (below).  The oracle
eps-predictor is computed in closed form: E[x_0 | x_t] = sum_k w_k(x_t) x^(k), w_k proportional to
P_k N(x_t; sqrt(abar) x^(k), (1 - abar) I), and eps = (x_t - sqrt(abar) E[x_0 | x_t]) / sqrt(1 - abar).
The true conditional p(b | a) and the posterior p(x_0 | y) are enumerated.  RePaint is an approximate
sampler even with a perfect denoiser (the unknown part sees the known part only through the noisy x_t), so the
check is quantitative: with resampling (r = 30, j = 3, T = 50 cosine) the total variation to p(b | a) is below
0.04 (sampling sd of the TV with 4000 draws: about 0.01), and plain replacement (r = 1) is far off (> 0.15):
the resampling is what makes it work.
"""
from __future__ import annotations

import torch

from genbench.diffusion.repaint import repaint_nfe, repaint_sample, repaint_schedule, sdedit_denoise, sdedit_start
from genbench.diffusion.schedule import Schedule

VALUES = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64)
P = torch.tensor([[0.30, 0.05, 0.01], [0.04, 0.10, 0.10], [0.02, 0.08, 0.30]], dtype=torch.float64)
P = P / P.sum()
SUPPORT = torch.stack(torch.meshgrid(VALUES, VALUES, indexing="ij"), -1).reshape(-1, 2)
CUTS = torch.tensor([-0.5, 0.5], dtype=torch.float64)


def oracle(schedule: Schedule):
    ab_all = schedule.alpha_bar
    w = P.reshape(-1)

    def eps_fn(x, t):
        ab = ab_all[t].to(x.dtype)[:, None]
        d2 = ((x[:, None, :] - ab.sqrt()[:, None] * SUPPORT[None]) ** 2).sum(-1)
        post = torch.softmax(w.log()[None] - d2 / (2 * (1 - ab)), -1)
        return (x - ab.sqrt() * (post @ SUPPORT)) / (1 - ab).sqrt()

    return eps_fn


def level_shares(x: torch.Tensor) -> torch.Tensor:
    return torch.bincount(torch.bucketize(x.contiguous(), CUTS), minlength=3).double() / len(x)


def repaint_tv(r: int, j: int, a_index: int = 0, n: int = 4000) -> tuple[float, torch.Tensor]:
    s = Schedule.make("cosine", 50)
    x0 = torch.zeros(n, 2, dtype=torch.float64)
    x0[:, 0] = VALUES[a_index]
    x, nfe = repaint_sample(oracle(s), s, x0, torch.tensor([True, False]), jump_length=j, resamplings=r,
                            generator=torch.Generator().manual_seed(0), clip_x0=None)
    assert nfe == repaint_nfe(50, j, r)
    true = P[a_index] / P[a_index].sum()
    return float((level_shares(x[:, 1]) - true).abs().sum() / 2), x


def test_schedule_visits_every_level_and_jumps_back():
    assert repaint_schedule(5, 1, 1) == [4, 3, 2, 1, 0, -1]
    ts = repaint_schedule(10, 2, 3)
    assert ts[0] == 9 and ts[-1] == -1 and all(abs(a - b) == 1 for a, b in zip(ts, ts[1:]))
    # reverse steps: T, plus (r - 1) * j for each jump point 0, 2, 4, 6 (below T - j)
    assert repaint_nfe(10, 2, 3) == 10 + 2 * 2 * 4


def test_repaint_with_a_perfect_denoiser_samples_the_true_conditional():
    tv, x = repaint_tv(30, 3)
    assert torch.equal(x[:, 0], torch.full((len(x),), -1.0, dtype=torch.float64))  # known part exactly back
    assert tv < 0.04, tv
    tv_plain, _ = repaint_tv(1, 1)
    assert tv_plain > 0.15, tv_plain


def test_sdedit_with_a_perfect_denoiser_samples_the_posterior():
    s = Schedule.make("cosine", 50)
    i = 20
    ab = float(s.alpha_bar[i])
    sigma = ((1 - ab) / ab) ** 0.5  # exactly level i: no extra noise, so SDEdit targets p(x_0 | y)
    assert sdedit_start(s, sigma) == i
    y = torch.tensor([0.6, -0.2], dtype=torch.float64)
    n = 4000
    x, nfe = sdedit_denoise(oracle(s), s, y.expand(n, 2).contiguous(), sigma,
                            generator=torch.Generator().manual_seed(1), clip_x0=None)
    assert nfe == i + 1
    logp = P.reshape(-1).log() - ((y - SUPPORT) ** 2).sum(-1) / (2 * sigma**2)
    post = torch.softmax(logp, 0)
    idx = torch.bucketize(x.contiguous(), CUTS)
    emp = torch.bincount(idx[:, 0] * 3 + idx[:, 1], minlength=9).double() / n
    tv = float((emp - post).abs().sum() / 2)
    assert tv < 0.04, (tv, emp, post)


def test_grey_merge_is_the_orthogonal_projection_on_the_grey_axis():
    """Colourisation's merge P a + (I - P) b (P: channel mean broadcast): keeps a's grey and b's colour."""
    from genbench.diffusion.repaint import grey_merge

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 3, 4, 4, generator=gen), torch.randn(2, 3, 4, 4, generator=gen)
    m = grey_merge(a, b)
    assert torch.allclose(m.mean(1, keepdim=True), a.mean(1, keepdim=True), atol=1e-6)
    assert torch.allclose(m - m.mean(1, keepdim=True), b - b.mean(1, keepdim=True), atol=1e-6)
    assert torch.allclose(grey_merge(a, a), a, atol=1e-6) and torch.allclose(grey_merge(m, b), m, atol=1e-6)
    assert torch.allclose(grey_merge(a.mean(1, keepdim=True), b), m, atol=1e-6)  # a grey image as the known part
    # orthogonal: the grey part and the colour part are perpendicular per pixel
    assert float((m.mean(1, keepdim=True).expand_as(m) * (m - m.mean(1, keepdim=True))).sum(1).abs().max()) < 1e-5
