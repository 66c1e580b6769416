"""Standard errors of the sample metrics inside one run: bootstrap, delete-a-group jackknife, binomial.

Every sample metric's row carries ``stderr``, the standard error of its ``value`` over new draws of the
samples and of the real reference images, and ``details["stderr_method"]`` says how it was estimated:

- **FID** (Heusel et al. 2017, eq. 6): the nonparametric bootstrap (Efron & Tibshirani 1993, ch. 6) over the
  feature rows of both sets: ``B`` replicates resample each set's rows with replacement (multinomial count
  weights, seeded), recompute the unbiased covariance and mean of each replicate, and the Frechet distance of
  each pair; ``stderr`` is the standard deviation of the ``B`` replicate distances.  Bias, stated: FID is a
  biased estimator (Chong & Forsyth 2020) and its bootstrap distribution is centred *above* the plug-in value
  (duplicated rows shrink the effective n, which inflates the bias).  So the row's value stays the plug-in FID
  of all rows and only the bootstrap *spread* is used, as its standard error.  The Frechet distances of all
  replicates are computed at once (:func:`frechet_distance_batched`, float64).
- **KID** (Binkowski et al. 2018): the value is the mean over ``S`` random subsets of the unbiased MMD^2.
  Given the data, its expectation is the unbiased MMD^2 U-statistic of the full sets (every pair is equally
  likely to fall in a subset), so Var(KID) = Var(U_full) + E[Var over subsets] / S: ``stderr`` =
  sqrt(bootstrap variance of U_full + std_over_subsets^2 / S), the bootstrap done with count weights on the
  kernel matrices (a replicate's U-statistic is (c'Kc - c.diag K) / (n(n-1)) per set minus 2 c_r'K c_f /
  (n_r n_f)).
- **precision / recall / density / coverage** (k-NN statistics, which a with-replacement bootstrap breaks:
  duplicated rows are each other's nearest neighbours at distance 0): the delete-a-group jackknife (Kott 2001;
  consistent for such non-smooth statistics when the deleted group is large, Shao & Wu 1989): both sets are
  cut into ``G`` groups, the metric is recomputed with group g left out of both, and
  se^2 = (G - 1) / G * sum_g (theta_g - mean theta)^2.
- How well they do (tests/metrics/test_bootstrap.py, Gaussian features, against the spread over 60
  independent draws of both sets): with the two distributions apart, FID's and KID's standard errors are
  1.1-1.2x the true spread and precision/recall/density/coverage's 1.1-1.4x; with identical distributions
  (a real-data floor, where FID and MMD^2 are quadratic in the noise: a degenerate U-statistic, for which
  the with-replacement bootstrap is known to overstate the variance, Arcones & Gine 1992) FID's 1.7x, KID's
  2.0x, the jackknife's 1.3-1.6x.  So intervals built on them are conservative, most of all near the floor.
- **shares of samples** (a mean of n independent 0/1 outcomes): the binomial standard error sqrt(p(1-p)/n),
  exact for independent samples.
- **class-label entropy and rarest-class share** (functions of the label histogram): the bootstrap over the
  samples' labels (each replicate's histogram is a multinomial draw from the observed one).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


RESAMPLES = 200  # bootstrap replicates for features of up to LARGE_DIMS dimensions
LARGE_DIMS = 512
RESAMPLES_LARGE = 25  # for wider features (Inception, 2048-d): each replicate needs a d x d eigenproblem
JACKKNIFE_GROUPS = 10
_CHUNK_ELEMENTS = 2**24  # float64 elements of the largest temporary (128 MiB)


def resamples_for(dims: int) -> int:
    """Bootstrap replicates used for ``dims``-dimensional features."""
    return RESAMPLES if dims <= LARGE_DIMS else RESAMPLES_LARGE


def derived_seed(*parts: object) -> int:
    """A 63-bit seed from the text of ``parts`` (the cell's seed, the sampler, the sampling seed...)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def resample_counts(n: int, resamples: int, seed: int) -> Tensor:
    """(B, n) float64 multinomial counts: how often each of n rows appears in each with-replacement resample."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(n, (resamples, n), generator=gen)
    return torch.zeros(resamples, n, dtype=torch.float64).scatter_add_(1, idx, torch.ones(resamples, n, dtype=torch.float64))


@dataclass
class Moments:
    """Means (B, d) and unbiased covariances (B, d, d) of B weighted replicates of one feature set."""

    mean: Tensor
    cov: Tensor


def bootstrap_moments(x: Tensor, counts: Tensor) -> Moments:
    """Mean and unbiased covariance of each resample given by ``counts`` (B, n) of the rows of ``x`` (n, d).

    cov_b = (sum_i c_bi (x_i - m_b)(x_i - m_b)^T) / (n - 1), computed from rows centred on the full mean
    (better conditioned) in chunks of replicates so the (b, d, n) temporary stays under 128 MiB.
    """
    x = x.to(torch.float64)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"a bootstrap covariance needs at least 2 feature vectors, got {n}")
    centre = x.mean(0)
    xc = x - centre
    shift = counts @ xc / n  # (B, d): m_b - centre
    covs = []
    step = max(1, _CHUNK_ELEMENTS // (d * n))
    for i in range(0, len(counts), step):
        c = counts[i : i + step]
        m2 = (xc.T[None] * c[:, None, :]) @ xc  # (b, d, d) = sum_i c_bi xc_i xc_i^T
        dm = shift[i : i + step]
        covs.append((m2 - n * dm[:, :, None] * dm[:, None, :]) / (n - 1))
    return Moments(centre + shift, torch.cat(covs))


def frechet_distance_batched(mu1: Tensor, s1: Tensor, mu2: Tensor, s2: Tensor) -> Tensor:
    """(B,) Frechet distances ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) of B pairs, in float64.

    The same computation as :func:`genbench.metrics.stats.trace_sqrt_product`, batched: the eigenvalues of
    L^T S1 L with S2 = L L^T (Cholesky), or of S2^{1/2} S1 S2^{1/2} where S2 is singular; eigenvalues at
    round-off level are zero.
    """
    mu1, mu2, s1, s2 = (t.to(torch.float64) for t in (mu1, mu2, s1, s2))
    s1, s2 = torch.broadcast_tensors(s1, s2)
    chol, info = torch.linalg.cholesky_ex(s2)
    singular = info != 0
    inner = None if bool(singular.all()) else chol.mT @ s1 @ chol
    if bool(singular.any()):  # fewer rows than dimensions: the symmetric square root instead (no in-place indexing)
        w, v = torch.linalg.eigh((s2 + s2.mT) / 2)
        root = (v * _clip_roundoff_rows(w).sqrt()[:, None, :]) @ v.mT
        rooted = root @ s1 @ root
        inner = rooted if inner is None else torch.where(singular[:, None, None], rooted, inner)
    assert inner is not None
    eig = _clip_roundoff_rows(torch.linalg.eigvalsh((inner + inner.mT) / 2))
    trace = s1.diagonal(dim1=-2, dim2=-1).sum(-1) + s2.diagonal(dim1=-2, dim2=-1).sum(-1)
    return (mu1 - mu2).square().sum(-1) + trace - 2 * eig.sqrt().sum(-1)


def _clip_roundoff_rows(eig: Tensor) -> Tensor:
    """``stats._clip_roundoff`` on each row of a batch of eigenvalue vectors."""
    tol = eig.abs().amax(-1, keepdim=True) * eig.shape[-1] * torch.finfo(eig.dtype).eps
    return torch.where(eig > tol, eig, torch.zeros_like(eig))


class ReferenceReplicates:
    """Bootstrap replicates of a reference feature set (rows resampled by ``counts``), shared by every compared
    set of a cell (common random numbers).  Their moments are computed once and kept when they fit in 64 MiB
    (B d^2 float64), else recomputed chunk by chunk."""

    def __init__(self, features: Tensor, counts: Tensor) -> None:
        self.features, self.counts = features.to(torch.float64), counts
        d = features.shape[1]
        self._all = bootstrap_moments(self.features, counts) if len(counts) * d * d * 8 <= 2**26 else None

    def moments(self, start: int, stop: int) -> Moments:
        if self._all is not None:
            return Moments(self._all.mean[start:stop], self._all.cov[start:stop])
        return bootstrap_moments(self.features, self.counts[start:stop])


def bootstrap_fids(compared: Tensor, counts: Tensor, reference: ReferenceReplicates | None = None,
                   fixed_reference: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """(B,) FIDs of B bootstrap replicates of ``compared`` (n, d) features drawn by ``counts`` (B, n), each
    against the matching replicate of ``reference`` (resampled too) or against ``fixed_reference`` (mean,
    covariance) held fixed.  Replicates are processed in chunks (bounded memory for 2048-d features)."""
    if (reference is None) == (fixed_reference is None):
        raise ValueError("give either bootstrap replicates of the reference or a fixed reference")
    if reference is not None and len(reference.counts) != len(counts):
        raise ValueError(f"{len(reference.counts)} reference replicates but {len(counts)} compared ones")
    d = compared.shape[1]
    step = max(1, _CHUNK_ELEMENTS // (4 * d * max(d, len(compared))))
    out = []
    for i in range(0, len(counts), step):
        m = bootstrap_moments(compared, counts[i : i + step])
        if reference is not None:
            r = reference.moments(i, i + len(m.mean))
            out.append(frechet_distance_batched(m.mean, m.cov, r.mean, r.cov))  # Cholesky of the (larger) reference
        else:
            assert fixed_reference is not None
            mu, cov = (t.to(m.mean.device, torch.float64) for t in fixed_reference)
            out.append(frechet_distance_batched(m.mean, m.cov, mu.expand_as(m.mean), cov.expand_as(m.cov)))
    return torch.cat(out)


def std(replicates: Tensor) -> float:
    """Standard deviation (n - 1) of bootstrap replicates: the bootstrap standard error."""
    return float(replicates.to(torch.float64).std(unbiased=True))


def ratio_stderr(a: float, b: float, reps_a: Tensor, reps_b: Tensor) -> float:
    """Standard error of a / b by the delta method, se^2 = (a/b)^2 (Var A/a^2 + Var B/b^2 - 2 Cov(A, B)/(ab)),
    with the variances and covariance of paired bootstrap replicates.  The replicates' own ratios are not used:
    their denominators sit above b (the bootstrap's upward bias, largest for a floor), which would shrink them."""
    ra, rb = reps_a.to(torch.float64), reps_b.to(torch.float64)
    cov = torch.cov(torch.stack([ra, rb]))
    rel = cov[0, 0] / a**2 + cov[1, 1] / b**2 - 2 * cov[0, 1] / (a * b)
    return abs(a / b) * math.sqrt(max(float(rel), 0.0))


# --------------------------------------------------------------------------------------- KID
def _poly_kernel(a: Tensor, b: Tensor, d: int) -> Tensor:
    return (a @ b.T / d + 1) ** 3


def kernel_quadratic_forms(x: Tensor, counts: Tensor, chunk: int = 1024) -> Tensor:
    """(B,) sum over ordered pairs of distinct positions of each resample: c'Kc - sum_i c_i K_ii, for the cubic
    polynomial kernel k(a, b) = (a.b/d + 1)^3 on the rows of ``x``, K built in row chunks (memory O(chunk n))."""
    x = x.to(torch.float64)
    n, d = x.shape
    total = torch.zeros(len(counts), dtype=torch.float64, device=x.device)
    for i in range(0, n, chunk):
        k = _poly_kernel(x[i : i + chunk], x, d)  # (c, n)
        kc = k @ counts.T  # (c, B)
        total += (counts[:, i : i + chunk] * kc.T).sum(1)
    diag = (x.square().sum(1) / d + 1) ** 3
    return total - counts @ diag


def kernel_cross_forms(x: Tensor, y: Tensor, cx: Tensor, cy: Tensor, chunk: int = 1024) -> Tensor:
    """(B,) c_x' K_xy c_y for the cubic polynomial kernel, in row chunks."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    d = x.shape[1]
    total = torch.zeros(len(cx), dtype=torch.float64, device=x.device)
    for i in range(0, len(x), chunk):
        kcy = _poly_kernel(x[i : i + chunk], y, d) @ cy.T  # (c, B)
        total += (cx[:, i : i + chunk] * kcy.T).sum(1)
    return total


def bootstrap_mmd2(real_forms: Tensor, real: Tensor, fake: Tensor, counts_real: Tensor, counts_fake: Tensor) -> Tensor:
    """(B,) unbiased MMD^2 U-statistics of B resampled pairs of sets; ``real_forms`` =
    ``kernel_quadratic_forms(real, counts_real)`` (computed once per reference and reused)."""
    nr, nf = len(real), len(fake)
    fake_forms = kernel_quadratic_forms(fake, counts_fake)
    cross = kernel_cross_forms(real, fake, counts_real, counts_fake)
    return real_forms / (nr * (nr - 1)) + fake_forms / (nf * (nf - 1)) - 2 * cross / (nr * nf)


def kid_stderr(bootstrap_mmd2_replicates: Tensor, std_over_subsets: float, subsets: int) -> float:
    """sqrt(Var_boot(U_full) + std_over_subsets^2 / subsets): the data's and the subsets' share of KID's variance."""
    return math.sqrt(std(bootstrap_mmd2_replicates) ** 2 + std_over_subsets**2 / subsets)


# --------------------------------------------------------------------------------------- jackknife, binomial
def group_jackknife(statistic: Callable[[Tensor], object], n: int, groups: int = JACKKNIFE_GROUPS) -> list:
    """The statistic with each of ``groups`` groups of the indices 0..n-1 (i mod groups) left out: a list of
    whatever ``statistic(kept_indices)`` returns."""
    idx = torch.arange(n)
    return [statistic(idx[idx % groups != g]) for g in range(groups)]


def jackknife_stderr(values: list[float] | Tensor) -> float:
    """Delete-a-group jackknife standard error sqrt((G - 1) / G * sum_g (theta_g - mean)^2)."""
    v = torch.as_tensor(values, dtype=torch.float64)
    g = len(v)
    return float(((g - 1) / g * (v - v.mean()).square().sum()).sqrt())


def binomial_stderr(p: float, n: int) -> float:
    """sqrt(p (1 - p) / n), the standard error of a share of n independent 0/1 outcomes."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n) if n > 0 else float("nan")


def bootstrap_label_stats(labels: Tensor, classes: int, statistic: Callable[[Tensor], Tensor],
                          resamples: int, seed: int) -> Tensor:
    """(B,) ``statistic`` of the class-share vectors (B, classes) of B with-replacement resamples of ``labels``."""
    counts = resample_counts(len(labels), resamples, seed)  # (B, n)
    onehot = torch.nn.functional.one_hot(labels.long(), classes).to(torch.float64)  # (n, K)
    return statistic(counts @ onehot / len(labels))
