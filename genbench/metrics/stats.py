"""Distances between two sets of features: Frechet distance, KID, precision/recall, density/coverage.

Pure maths on (N, d) feature tensors, no networks.  Everything is computed in float64.

- Frechet distance (Heusel et al. 2017, eq. 6), from streamed means and covariances.
- KID (Binkowski et al. 2018, eq. 2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3):
  the unbiased MMD^2 estimator averaged over random subsets, drawn like torchmetrics
  draws them but from a seeded generator (so it equals torchmetrics' value; tests check it).
- Precision and recall (Kynkaanniemi et al. 2019, eq. 1-3): each set's manifold is the
  union of balls around its points with radius the distance to the k-th nearest
  neighbour (k = 3); precision = share of generated points inside the real manifold,
  recall = share of real points inside the generated manifold.
- Density and coverage (Naeem et al. 2020, eq. 3-4): density =
  1/(kM) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))], coverage = 1/N sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))],
  with k = 5, the paper's default.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

PR_K = 3
DC_K = 5


class FeatureStats:
    """Running mean and covariance of features, merged batch by batch (memory O(d^2), independent of n).

    Uses Chan et al.'s pairwise update of the mean and the co-moment matrix
    M2 = sum (x - mean)(x - mean)^T, which is far better conditioned than
    accumulating sum(x x^T) and subtracting n mean mean^T at the end.
    """

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.n = 0
        self.mean = torch.zeros(dims, dtype=torch.float64)
        self.m2 = torch.zeros(dims, dims, dtype=torch.float64)

    def update(self, features: Tensor) -> None:
        """Merge a batch (B, d) of features, on the features' device (float64 there; ``to_cpu`` when done)."""
        f = features.detach().to(torch.float64).reshape(len(features), -1)
        if self.m2.device != f.device:
            self.mean, self.m2 = self.mean.to(f.device), self.m2.to(f.device)
        if f.shape[1] != self.dims:
            raise ValueError(f"features have {f.shape[1]} dimensions, statistics have {self.dims}")
        b = len(f)
        if b == 0:
            return
        mean_b = f.mean(0)
        centred = f - mean_b
        m2_b = centred.T @ centred
        n = self.n + b
        delta = mean_b - self.mean
        self.m2 += m2_b + torch.outer(delta, delta) * (self.n * b / n)
        self.mean += delta * (b / n)
        self.n = n

    def to_cpu(self) -> FeatureStats:
        """The running statistics back on the host (where distances, caches and rows expect them)."""
        self.mean, self.m2 = self.mean.cpu(), self.m2.cpu()
        return self

    @property
    def cov(self) -> Tensor:
        """Unbiased covariance (divides by n - 1, as numpy.cov and torchmetrics do)."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.n}")
        return self.m2 / (self.n - 1)

    def state(self) -> dict[str, Tensor]:
        return {"n": torch.tensor(self.n), "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_state(cls, state: dict[str, Tensor]) -> FeatureStats:
        out = cls(int(state["mean"].numel()))
        out.n, out.mean, out.m2 = int(state["n"]), state["mean"].clone(), state["m2"].clone()
        return out

    @classmethod
    def of(cls, features: Tensor, batch_size: int = 4096) -> FeatureStats:
        out = cls(int(features.shape[1]))
        for i in range(0, len(features), batch_size):
            out.update(features[i : i + batch_size])
        return out.to_cpu()


def _psd_sqrt(s: Tensor) -> Tensor:
    """Symmetric square root of a symmetric PSD matrix (tiny negative eigenvalues from round-off clipped)."""
    w, v = torch.linalg.eigh((s + s.T) / 2)
    return (v * _clip_roundoff(w).sqrt()) @ v.T


def _clip_roundoff(eig: Tensor) -> Tensor:
    """Eigenvalues at round-off level (|lambda| <= d eps max lambda) are zero: keeps sqrt from amplifying noise."""
    tol = eig.abs().max() * len(eig) * torch.finfo(eig.dtype).eps
    return torch.where(eig > tol, eig, torch.zeros_like(eig))


def trace_sqrt_product(sigma1: Tensor, sigma2: Tensor) -> Tensor:
    """Tr (S1 S2)^{1/2} for symmetric PSD S1, S2, in float64, through a symmetric eigenproblem.

    S1 S2 has the eigenvalues of a symmetric PSD matrix: with S2 = L L^T (Cholesky) those of
    L^T S1 L, else (S2 singular, e.g. fewer images than dimensions) those of
    S2^{1/2} S1 S2^{1/2}.  So Tr (S1 S2)^{1/2} = sum_i sqrt(lambda_i), with no non-symmetric
    sqrtm/eigvals and its spurious imaginary parts.
    """
    l, info = torch.linalg.cholesky_ex(sigma2)
    if int(info) == 0:
        inner = l.T @ sigma1 @ l
    else:
        root2 = _psd_sqrt(sigma2)
        inner = root2 @ sigma1 @ root2
    eig = _clip_roundoff(torch.linalg.eigvalsh((inner + inner.T) / 2))
    return eig.sqrt().sum()


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})  (Heusel et al. 2017, eq. 6), in float64."""
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    sigma1, sigma2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    d2 = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt_product(sigma1, sigma2)
    return float(d2)


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


@dataclass
class KIDResult:
    mean: float
    std: float  # population std over subsets, as torchmetrics reports it
    subsets: int
    subset_size: int
    seed: int


def poly_mmd2(x: Tensor, y: Tensor) -> Tensor:
    """Unbiased MMD^2 of two equal-sized sets with k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018, eq. 2)."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    same = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return same - 2 * kxy.sum() / (m * m)


def kid(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> KIDResult:
    """KID: unbiased polynomial-kernel MMD^2 averaged over ``subsets`` random subsets of ``subset_size``.

    Subsets are drawn exactly as torchmetrics' KernelInceptionDistance draws them
    (``randperm`` of real, then of fake, per subset), but from a generator seeded with
    ``seed``, so the value equals torchmetrics' after ``torch.manual_seed(seed)``.
    ``subset_size`` is capped at the smaller set's size (and recorded).
    """
    real, fake = real.to(torch.float64), fake.to(torch.float64)
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {len(real)} real and {len(fake)} generated")
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        r = real[torch.randperm(len(real), generator=gen)[:size]]
        f = fake[torch.randperm(len(fake), generator=gen)[:size]]
        scores.append(poly_mmd2(r, f))
    s = torch.stack(scores)
    return KIDResult(float(s.mean()), float(s.std(unbiased=False)), subsets, size, seed)


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    d = a.square().sum(1, keepdim=True) + b.square().sum(1)[None] - 2 * a @ b.T
    return d.clamp_min_(0)


def kth_nn_radius(x: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row (the point itself excluded)."""
    x = x.to(torch.float64)
    if len(x) <= k:
        raise ValueError(f"k-th nearest neighbour with k={k} needs more than {k} points, got {len(x)}")
    out = []
    for i in range(0, len(x), chunk):
        d = _sq_dists(x[i : i + chunk], x)
        # index k of the sorted row: index 0 is the point itself (distance 0)
        out.append(d.kthvalue(k + 1, dim=1).values.sqrt())
    return torch.cat(out)


def _ball_counts(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 1024, strict: bool = False) -> tuple[Tensor, Tensor]:
    """For every point: how many balls B(centre, radius) contain it; for every centre: whether any point is inside."""
    points, centres = points.to(torch.float64), centres.to(torch.float64)
    r2 = radii.to(torch.float64).square()
    counts = torch.zeros(len(points), dtype=torch.int64)
    covered = torch.zeros(len(centres), dtype=torch.bool)
    for i in range(0, len(points), chunk):
        d = _sq_dists(points[i : i + chunk], centres)
        inside = d < r2[None] if strict else d <= r2[None]
        counts[i : i + chunk] = inside.sum(1)
        covered |= inside.any(0)
    return counts, covered


@dataclass
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float
    k_pr: int
    k_dc: int


def prdc(real: Tensor, fake: Tensor, k_pr: int = PR_K, k_dc: int = DC_K) -> PRDC:
    """Precision/recall (Kynkaanniemi et al. 2019, k=3) and density/coverage (Naeem et al. 2020, k=5).

    Memory is O(chunk x N): distances are computed in row blocks.  A point is inside a
    ball when its distance is <= the radius for precision/recall (Kynkaanniemi et al.'s
    code) and < the radius for density/coverage (Naeem et al.'s code).
    """
    real_r_pr = kth_nn_radius(real, k_pr)
    fake_r_pr = kth_nn_radius(fake, k_pr)
    in_real, _ = _ball_counts(fake, real, real_r_pr)
    in_fake, _ = _ball_counts(real, fake, fake_r_pr)
    real_r_dc = real_r_pr if k_dc == k_pr else kth_nn_radius(real, k_dc)
    counts, covered = _ball_counts(fake, real, real_r_dc, strict=True)
    return PRDC(
        precision=float((in_real > 0).double().mean()),
        recall=float((in_fake > 0).double().mean()),
        density=float(counts.double().sum() / (k_dc * len(fake))),
        coverage=float(covered.double().mean()),
        k_pr=k_pr,
        k_dc=k_dc,
    )


@dataclass
class PRDCComparison:
    """PRDC of two equal-sized subsets of a reference set and a compared set, and how they were drawn."""

    result: PRDC
    n_each: int
    seed: int


def prdc_of_sets(reference: Tensor, compared: Tensor, seed: int, k_pr: int = PR_K, k_dc: int = DC_K) -> PRDCComparison:
    """PRDC between a reference (real) feature set and a compared feature set of possibly different sizes.

    The one subsampling rule, used by the runner's ``prdc`` metric and by ``genbench fid --pr``: both sides
    have m = min(n_reference, n_compared) points; the reference keeps a uniformly random m-subset drawn with
    ``torch.randperm(n_reference, generator=Generator().manual_seed(seed))[:m]`` (all of it, in order, when it
    has m points); the compared set keeps its first m points.  Generated samples are independent draws, so their
    first m are a random subset; a compared set stored in some order (files sorted by class) should be shuffled
    by whoever stores it.
    """
    real, fake = prdc_subsets(reference, compared, seed, k_dc)
    return PRDCComparison(prdc(real, fake, k_pr, k_dc), len(fake), seed)


def prdc_subsets(reference: Tensor, compared: Tensor, seed: int, k_dc: int = DC_K) -> tuple[Tensor, Tensor]:
    """The two equal-sized sets :func:`prdc_of_sets` compares (its docstring states the rule)."""
    m = min(len(reference), len(compared))
    if m <= k_dc:
        raise ValueError(f"precision/recall need more than {k_dc} points per set, got {len(reference)} and {len(compared)}")
    real = reference
    if len(reference) > m:
        real = reference[torch.randperm(len(reference), generator=torch.Generator().manual_seed(seed))[:m]]
    return real, compared[:m]
