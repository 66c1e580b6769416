"""The known-part references of a completion task (``genbench.tasks.ambiguity``): temperature scaling against
scipy's optimiser, the rows against their definitions, and the whole estimate against a data set whose
conditional p(class | known half) is known in closed form."""
from __future__ import annotations

import math

import pytest
import torch
from scipy.optimize import minimize_scalar

from genbench.data.base import DataSplits
from genbench.metrics.extractors import fit_classifier
from genbench.model import DataSpec
from genbench.tasks.ambiguity import (CNNConditional, NeighbourConditional, fit_neighbours, fit_temperature,
                                      known_part_conditional, masked_input, neighbour_probabilities, reference_rows)
from genbench.tasks.masks import parse_mask


def test_the_temperature_is_scipys_minimiser_of_the_validation_nll():
    g = torch.Generator().manual_seed(0)
    true_logits = torch.randn(2000, 5, generator=g, dtype=torch.float64) * 1.5
    labels = torch.multinomial(torch.softmax(true_logits, -1), 1, generator=g)[:, 0]
    logits = 3.0 * true_logits  # over-confident by a factor 3: T should come out near 3

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        return float(-(z.gather(1, labels[:, None])[:, 0] - torch.logsumexp(z, -1)).mean())

    ref = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded", options={"xatol": 1e-8})
    t, value = fit_temperature(logits, labels)
    assert abs(math.log(t) - ref.x) <= 0.0051  # half the grid's log spacing (ratio 1.0101)
    assert value == pytest.approx(ref.fun, abs=1e-4)  # the NLL is flat at its minimum
    assert 2.5 < t < 3.5


def test_the_rows_are_the_argmax_accuracy_and_the_mean_probability_of_the_label():
    q = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 0])
    (name_a, acc, acc_se, _), (name_c, ceiling, ceiling_se, _) = reference_rows(q, labels)
    assert (name_a, name_c) == ("class_agreement_known_only", "class_agreement_sampler_ceiling")
    # argmax: 0, 1, 0 (ties: the first), 0 -> right, wrong, wrong, right
    assert acc == 0.5 and acc_se == pytest.approx(math.sqrt(0.25 / 4))
    values = torch.tensor([0.6, 0.3, 0.5, 0.9], dtype=torch.float64)
    assert ceiling == pytest.approx(float(values.mean())) and ceiling_se == pytest.approx(float(values.std() / 2))


def test_masked_input_hides_the_unknown_pixels_and_carries_the_mask():
    x = torch.rand(3, 2, 4, 4)
    known = parse_mask("bottom-half").known_mask(3, 4, 4)
    inp = masked_input(x, known)
    assert inp.shape == (3, 4, 4, 4)
    assert torch.equal(inp[:, :2][known.expand_as(x)], x[known.expand_as(x)])
    assert bool((inp[:, :2][~known.expand_as(x)] == 0.5).all())
    assert torch.equal(inp[:, 2:], known.expand_as(x).float())


def two_halves(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8x8 images with K = 5 levels: top half A or B (one half each), bottom half P or Q (one half each), two
    noisy pixels.  Class 0 = (A, P), 1 = (A, Q), 2 = B.  With the top half known, p(class | A) = (1/2, 1/2, 0)
    and p(class | B) = (0, 0, 1); returns images, labels and p(label | top half) per image."""
    top = torch.randint(0, 2, (n,), generator=g)
    bottom = torch.randint(0, 2, (n,), generator=g)
    img = torch.zeros(n, 1, 8, 8, dtype=torch.int64)
    img[top == 0, :, 0:4, 0:4] = 4  # A: left block
    img[top == 1, :, 0:4, 4:8] = 4  # B: right block
    img[bottom == 0, :, 5:7, :] = 3  # P: a bar
    img[bottom == 1, :, 4:8, 2:6] = 2  # Q: a square
    noise = torch.randint(0, 64, (n, 2), generator=g)
    img.view(n, -1).scatter_(1, noise, torch.randint(0, 5, (n, 2), generator=g))
    labels = torch.where(top == 1, 2, bottom)
    p_label = torch.where(top == 1, 1.0, 0.5).double()
    return img, labels, p_label


def test_the_estimate_recovers_a_known_conditional(tmp_path):
    g = torch.Generator().manual_seed(3)
    (tr, ytr, _), (va, yva, _), (te, yte, p_te) = (two_halves(n, g) for n in (768, 400, 400))
    data = DataSplits(DataSpec(1, 8, 8, 5), tr, va, te, "two-halves", ytr, yva, yte, num_classes=3)
    x = data.unit("test")
    for mask_name, exact in (("bottom-half", float(p_te.mean())), ("top-half", 0.5)):
        # bottom half unknown: mean p(y | top) = 1/2 on A, 1 on B.  Top half unknown: p(class | P) = (1/2, 0, 1/2),
        # p(class | Q) = (0, 1/2, 1/2), so 1/2 exactly: the estimate follows the mask, not the data alone
        mask = parse_mask(mask_name)
        known = mask.known_mask(len(x), 8, 8)
        ref = known_part_conditional(data, mask, tmp_path, torch.device("cpu"), epochs=30)
        details = ref.details
        # the estimator used is the one with the lower validation NLL, and both were fitted
        assert details["validation_nll"] == min(details["validation_nll_cnn"], details["validation_nll_neighbours"])
        assert isinstance(ref, NeighbourConditional if details["estimator"] == "neighbours" else CNNConditional)
        (_, acc, _, _), (_, ceiling, _, _) = reference_rows(ref.probabilities(x, known), yte)
        assert ceiling == pytest.approx(exact, abs=0.04), mask_name
        assert abs(acc - exact) < 0.1  # argmax: right on B; right on half of A (the class it picks)
        # fitted once: the second call reads the cache (same estimator, same probabilities)
        again = known_part_conditional(data, mask, tmp_path, torch.device("cpu"), epochs=30)
        assert again.details == details
        assert torch.equal(again.probabilities(x, known), ref.probabilities(x, known))
    assert len(list((tmp_path / "extractors").glob("known-only-*.pt"))) == 2  # one per mask


def test_each_estimator_recovers_the_conditional_on_its_own(tmp_path):
    g = torch.Generator().manual_seed(4)
    (tr, ytr, _), (va, yva, _), (te, yte, p_te) = (two_halves(n, g) for n in (768, 400, 400))
    unit = lambda t: t.float() / 4  # noqa: E731  (K = 5 levels)
    mask = parse_mask("bottom-half")
    known_va, known_te = mask.known_mask(len(va), 8, 8), mask.known_mask(len(te), 8, 8)
    neighbours, nll = fit_neighbours(unit(tr), ytr, 3, unit(va), known_va, yva)
    (_, _, _, _), (_, ceiling, _, _) = reference_rows(neighbours.probabilities(unit(te), known_te), yte)
    assert ceiling == pytest.approx(float(p_te.mean()), abs=0.04)
    assert nll == pytest.approx(float(-(torch.where(yva == 2, 1.0, 0.5)).log().mean()), abs=0.05)  # H(Y | top)
    # the CNN on masked inputs (a fresh mask per batch), calibrated on the validation images
    net = fit_classifier(unit(tr), ytr, 3, 8, torch.device("cpu"), 30,
                         prepare=lambda b, gen: masked_input(b, mask.known_mask(len(b), 8, 8, gen)), channels=2)
    temperature, _ = fit_temperature(CNNConditional(net, 1.0).probabilities(unit(va), known_va).log(), yva)
    (_, _, _, _), (_, ceiling, _, _) = reference_rows(
        CNNConditional(net, temperature).probabilities(unit(te), known_te), yte)
    assert ceiling == pytest.approx(float(p_te.mean()), abs=0.04)
    # the kernel: one neighbour at distance 0 of class 1, one at tau of class 0 -> votes (e^-1, 1, 0) + alpha
    q = neighbour_probabilities(torch.tensor([[0.0, 2.0]], dtype=torch.float64), torch.tensor([[1, 0]]), 3, 2.0, 0.1)
    votes = torch.tensor([math.exp(-1) + 0.1, 1.1, 0.1], dtype=torch.float64)
    assert torch.allclose(q[0], votes / votes.sum(), atol=1e-12)
