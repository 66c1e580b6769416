"""How ambiguous a completion task is: what the known sub-pixels alone say about the original's class.

Class agreement (``genbench.tasks.metrics``) is bounded by the task itself, not only by the model: where the
known part of a digit fits several classes, an exact sampler of the conditional p(unknown | known) draws
completions of every class the known part allows.  This module estimates the label's conditional
q(c | known) from the known sub-pixels alone and gives two reference rows:

- ``class_agreement_known_only``: the share of test images whose known part alone names the original's class
  (argmax q).  A mode-seeking completion (always the most probable class) can approach it; it estimates the
  Bayes accuracy of the known part from below, as any fitted classifier does.
- ``class_agreement_sampler_ceiling``: the mean of q(y | known) over the test images, y the original's label:
  the share an exact sampler of p(unknown | known) keeps when its completions' classes follow q (for a
  calibrated q, E[q(y | known)] = E[sum_c q(c | known)^2]), before the full classifier's own errors (a
  completion of class c is labelled c with about the classifier's accuracy).  It is an estimate: a q that
  misses information in the known part is flatter than the true conditional and under-states it (Jensen); an
  over-confident q over-states it, which the held-out calibration below corrects.

Two estimators of q, both fitted on the train split with the task's mask and tuned on the validation split; the
one with the lower validation negative log-likelihood is used (E[-log q(y | known)] = H(Y | known) +
E[KL(p || q)], so the lower held-out NLL is the closer conditional), and the rows record both NLLs:

- ``neighbours``: kernel-weighted labels of the k = 50 training images nearest on the known sub-pixels
  (Nadaraya-Watson classification: q(c) ∝ alpha + sum_j exp(-(d_j - d_1) / tau) [y_j = c], d the squared
  distance of ``genbench.tasks.retrieval.known_distances``), tau and alpha by grid search on the validation NLL.
- ``cnn``: the data set classifier's network and recipe (``metrics.extractors.fit_classifier``) with the masked
  image and the mask as input channels (a fresh mask per batch for random masks), calibrated by one temperature
  T (temperature scaling, Guo et al. 2017, section 4.2: T minimises the validation NLL of softmax(z / T), here
  over a log-spaced grid of 601 values in [0.05, 20]).

It needs no generative model, so it is fitted once per data set, task mask and recipe and cached beside the
feature extractors; every cell of the data set gets the same rows.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from genbench.data.base import DataSplits
from genbench.io import atomic_write_json, load_verified, save_verified
from genbench.metrics.extractors import ClassifierNet, fit_classifier, seeded_init
from genbench.tasks.base import task_seed
from genbench.tasks.masks import MaskSpec
from genbench.tasks.retrieval import known_distances

__all__ = ["CNNConditional", "NeighbourConditional", "fit_neighbours", "fit_temperature", "known_part_conditional",
           "masked_input", "reference_rows"]

RECIPE = "known-only-v1"  # bump when a fit, an input or the calibration changes
#: the temperatures tried by ``fit_temperature``: log-spaced, ratio 1.0101 between neighbours
TEMPERATURES = torch.logspace(math.log10(0.05), math.log10(20.0), 601, dtype=torch.float64)
#: the neighbour estimator's grid: tau as multiples of the median gap between the first and the k-th neighbour's
#: distance, and alpha
BANDWIDTH_FACTORS = torch.logspace(-2, 1, 31, dtype=torch.float64)
ALPHAS = (1e-4, 1e-3, 1e-2, 3e-2, 0.1)
NEIGHBOURS = 50


def masked_input(images: Tensor, known: Tensor) -> Tensor:
    """The CNN's input: the known sub-pixels (unknown ones at 0.5, as the models are shown them) and the mask
    itself as extra channels in {0, 1}: (n, 2C, H, W)."""
    mask = known.expand_as(images)
    return torch.cat([torch.where(mask, images, torch.full_like(images, 0.5)), mask.to(images.dtype)], 1)


def fit_temperature(logits: Tensor, labels: Tensor) -> tuple[float, float]:
    """(T, NLL): the temperature of ``TEMPERATURES`` with the lowest mean negative log-likelihood of
    softmax(logits / T) for ``labels``, and that NLL in nats (Guo et al. 2017, temperature scaling)."""
    z = logits.to(torch.float64)
    y = labels.to(torch.int64)
    nll = torch.stack([F.cross_entropy(z / t, y) for t in TEMPERATURES])
    best = int(nll.argmin())
    return float(TEMPERATURES[best]), float(nll[best])


def mean_nll(q: Tensor, labels: Tensor) -> float:
    """Mean -log q(y) in nats."""
    return float(-q.gather(1, labels.to(torch.int64)[:, None]).clamp_min(1e-300).log().mean())


@dataclass
class CNNConditional:
    """q(c | known) = softmax(z / T) of the masked-input classifier."""

    net: ClassifierNet
    temperature: float
    details: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def probabilities(self, observed: Tensor, known: Tensor, batch_size: int = 1000) -> Tensor:
        """q(c | known) for images ``observed`` (n, C, H, W) whose sub-pixels ``known`` marks: (n, classes)."""
        dev = next(self.net.parameters()).device
        x = masked_input(observed, known)
        logits = torch.cat([self.net.logits(x[i : i + batch_size].to(dev)).cpu() for i in range(0, len(x), batch_size)])
        return F.softmax(logits.to(torch.float64) / self.temperature, -1)


@dataclass
class NeighbourConditional:
    """q(c | known) ∝ alpha + sum over the k nearest pool images (on the known sub-pixels) of
    exp(-(d_j - d_1) / tau) [y_j = c]."""

    pool: Tensor
    labels: Tensor
    classes: int
    tau: float
    alpha: float
    k: int = NEIGHBOURS
    details: dict[str, Any] = field(default_factory=dict)

    def nearest(self, observed: Tensor, known: Tensor) -> tuple[Tensor, Tensor]:
        """(distances, labels) of the k nearest pool images, nearest first: two (n, k) tensors."""
        k = min(self.k, len(self.pool))
        found = [d.topk(k, dim=1, largest=False) for d in known_distances(observed, known, self.pool)]
        return torch.cat([f.values for f in found]), self.labels.to(torch.int64)[torch.cat([f.indices for f in found])]

    def probabilities(self, observed: Tensor, known: Tensor) -> Tensor:
        return neighbour_probabilities(*self.nearest(observed, known), self.classes, self.tau, self.alpha)


def neighbour_probabilities(dist: Tensor, labels: Tensor, classes: int, tau: float, alpha: float) -> Tensor:
    """The Nadaraya-Watson class probabilities from the neighbours' distances and labels (n, k)."""
    weights = torch.exp(-(dist - dist[:, :1]) / tau)
    votes = torch.zeros(len(dist), classes, dtype=torch.float64).scatter_add_(1, labels, weights)
    return (votes + alpha) / (votes.sum(1, keepdim=True) + classes * alpha)


def fit_neighbours(pool: Tensor, pool_labels: Tensor, classes: int, observed: Tensor, known: Tensor,
                   labels: Tensor) -> tuple[NeighbourConditional, float]:
    """The neighbour estimator whose (tau, alpha) on the grid gives the lowest mean NLL of ``labels`` for the
    held-out ``observed`` images, and that NLL; tau is a multiple of the median gap between their first and k-th
    neighbours' distances."""
    est = NeighbourConditional(pool, pool_labels, classes, 1.0, ALPHAS[0])
    dist, nb_labels = est.nearest(observed, known)
    spread = dist[:, -1] - dist[:, 0]  # how far the k-th neighbour is beyond the first: the kernel's natural scale
    scale = float(spread.median())
    if scale <= 0:  # most held-out images have k equally near neighbours: the widest gap instead
        scale = float(spread.max().clamp_min(1e-6))
    best: tuple[float, float, float] | None = None
    for factor in BANDWIDTH_FACTORS.tolist():
        for alpha in ALPHAS:
            nll = mean_nll(neighbour_probabilities(dist, nb_labels, classes, factor * scale, alpha), labels)
            if best is None or nll < best[0]:
                best = (nll, factor * scale, alpha)
    assert best is not None
    est.tau, est.alpha = best[1], best[2]
    return est, best[0]


def known_part_conditional(data: DataSplits, mask: MaskSpec, cache_dir: Path, device: torch.device,
                           epochs: int = 60) -> CNNConditional | NeighbourConditional:
    """q(c | known) for ``data`` and ``mask``: the estimator (neighbours or CNN) with the lower validation NLL,
    fitted once and cached in ``cache_dir/extractors`` (keyed by the data's hash, the recipe, the mask and
    ``epochs``).  Without validation labels: the CNN at T = 1."""
    classes = int(data.num_classes or int(data.train_labels.max()) + 1)
    channels, height, width = data.spec.channels, data.spec.height, data.spec.width
    key = hashlib.sha256(f"{data.data_hash}:{RECIPE}:{mask.label}:{epochs}".encode()).hexdigest()[:20]
    path = Path(cache_dir) / "extractors" / f"known-only-{key}.pt"
    pool = data.unit("train")
    blob = load_verified(path)
    if blob is None:
        def prepare(batch: Tensor, gen: torch.Generator) -> Tensor:
            return masked_input(batch, mask.known_mask(len(batch), height, width, gen))

        net = fit_classifier(pool, data.train_labels, classes, height, device, epochs, seed=0, prepare=prepare,
                             channels=2 * channels)
        details: dict[str, Any] = {"recipe": RECIPE, "mask": mask.label, "epochs": epochs,
                                   "n_train": len(data.train_labels), "estimator": "cnn", "temperature": 1.0}
        if data.val_labels is not None:  # tune on held-out images
            val = data.unit("val")
            val_seed = task_seed(0, RECIPE, mask.label)
            val_known = mask.known_mask(len(val), height, width, torch.Generator().manual_seed(val_seed))
            logits = CNNConditional(net, 1.0).probabilities(val, val_known).log()  # log-softmax: z - const
            temperature, nll_cnn = fit_temperature(logits, data.val_labels)
            neighbours, nll_nb = fit_neighbours(pool, data.train_labels, classes, val, val_known, data.val_labels)
            details.update({"temperature": round(temperature, 4), "validation_nll_cnn": round(nll_cnn, 4),
                            "bandwidth": neighbours.tau, "alpha": neighbours.alpha, "neighbours": neighbours.k,
                            "validation_nll_neighbours": round(nll_nb, 4), "n_validation": len(val),
                            "estimator": "neighbours" if nll_nb < nll_cnn else "cnn",
                            "validation_nll": round(min(nll_nb, nll_cnn), 4)})
        blob = {"state": {k: v.cpu() for k, v in net.state_dict().items()}, "details": details}
        save_verified(path, blob)
        atomic_write_json(path.with_suffix(".json"), details)
    details = dict(blob["details"])
    if details["estimator"] == "neighbours":
        return NeighbourConditional(pool, data.train_labels, classes, float(details["bandwidth"]),
                                    float(details["alpha"]), int(details["neighbours"]), details)
    net = seeded_init(lambda: ClassifierNet(2 * channels, classes, height), 0)
    net.load_state_dict(blob["state"])
    return CNNConditional(net.to(device).eval(), float(details["temperature"]), details)


def reference_rows(q: Tensor, labels: Tensor) -> list[tuple[str, float, float, str]]:
    """(metric, value, stderr, meaning) of the two reference rows from q(c | known) (n, classes) and the
    originals' ``labels``: argmax accuracy (binomial stderr) and mean q(y | known) (stderr sd / sqrt(n))."""
    y = labels.to(torch.int64)
    hit = (q.argmax(-1) == y).double()
    acc = float(hit.mean())
    q_true = q.gather(1, y[:, None])[:, 0].double()
    n = len(y)
    se = float(q_true.std() / math.sqrt(n)) if n > 1 else float("nan")
    return [
        ("class_agreement_known_only", acc, math.sqrt(max(acc * (1 - acc), 0.0) / n),
         "the known sub-pixels alone name the original's class (argmax q(c | known)); a mode-seeking completion "
         "can approach it"),
        ("class_agreement_sampler_ceiling", float(q_true.mean()), se,
         "mean q(y | known): about the share an exact sampler of p(unknown | known) keeps, before the "
         "classifier's own errors"),
    ]
