"""A task end to end on digits: deterministic corruption, the perfect restoration's scores, unsupported models
reported (not crashed), the tasks hook, and a trained cell reused from its checkpoint without retraining."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genbench import GenerativeModel
from genbench.data.files import resolve_dataset
from genbench.metrics.base import EvalContext
from genbench.metrics.extractors import ClassifierExtractor
from genbench.plugins import build_registry
from genbench.tasks.base import TaskError
from genbench.tasks.builtin import Colourise, Denoise, Inpaint, Outpaint
from genbench.tasks.run import TaskOptions, evaluate_task


@pytest.fixture(scope="module")
def registry():
    return build_registry(autoload=False)


@pytest.fixture(scope="module")
def digits(registry):
    return resolve_dataset("digits", registry).load()


class NearestMean(nn.Module):
    """A stand-in classifier: logits = -distance to each class's mean training image (fitted in the test)."""

    def __init__(self, means: torch.Tensor) -> None:
        super().__init__()
        self.means = nn.Parameter(means, requires_grad=False)

    def forward(self, x):
        return x.flatten(1)

    def logits(self, x):
        return -torch.cdist(x.flatten(1), self.means)


def stub_context(model, data, registry, tmp_path) -> EvalContext:
    train = data.unit("train").flatten(1)
    means = torch.stack([train[data.train_labels == k].mean(0) for k in range(10)])
    net = NearestMean(means)
    ext = ClassifierExtractor(net, "stub", train.shape[1], "none", name="classifier", accuracy=0.9)
    ctx = EvalContext(model=model, data=data, samples=[], device=torch.device("cpu"), cache_dir=tmp_path, seed=7,
                      registry=registry, extractor_names=["classifier"])
    ctx._extractors["classifier"] = ext
    return ctx


class Oracle(GenerativeModel):
    """Completes with the truth: it looks the corrupted input up in a table built by the test."""

    name = "oracle"
    capabilities = frozenset({"complete"})
    table: dict[bytes, torch.Tensor] = {}

    def train_step(self, x):
        return {"loss": 0.0}

    def sample(self, n, *, steps=None, generator=None):
        return torch.zeros(n, *self.data.shape)

    def complete(self, x, known_mask, *, generator=None):
        return torch.stack([self.table[row.numpy().tobytes()] for row in x])


class Plain(Oracle):
    name = "plain"
    capabilities = frozenset()


def test_corruption_is_deterministic_from_the_seed(digits):
    x = digits.unit("test")[:50]
    for task in (Inpaint("random-pixels:0.5"), Outpaint(), Denoise(sigma=0.3)):
        a, b, c = task.corrupt(x, 1), task.corrupt(x, 1), task.corrupt(x, 2)
        assert torch.equal(a.observed, b.observed) and torch.equal(a.known, b.known)
        assert torch.equal(a.observed, c.observed) == (task.name == "outpaint")  # a fixed mask needs no seed
    inpaint = Inpaint("center").corrupt(x, 0)
    assert torch.equal(inpaint.observed[inpaint.known.expand_as(x)], x[inpaint.known.expand_as(x)])


def test_the_truth_scores_psnr_inf_and_the_classifiers_accuracy(digits, registry, tmp_path, monkeypatch):
    from functools import partial

    from genbench.tasks import ambiguity, run

    monkeypatch.setattr(run, "known_part_conditional", partial(ambiguity.known_part_conditional, epochs=2))
    task = Inpaint("bottom-half")
    n = 60
    truth = digits.unit("test")[:n]
    corrupted = task.corrupt(truth, 7)
    Oracle.table = {o.numpy().tobytes(): t for o, t in zip(corrupted.observed, truth)}
    model = Oracle(Oracle.Config(), digits.spec)
    ctx = stub_context(model, digits, registry, tmp_path)
    rows, grid = evaluate_task(model, task, ctx, TaskOptions(n_images=n, completions=2, diversity_inputs=5))
    by = {m.metric: m for m in rows}
    assert by["supported"].value == 1.0
    assert by["mse_unknown"].value == 0.0 and math.isinf(by["psnr_unknown"].value)
    assert by["mse_known"].value == 0.0 and math.isinf(by["psnr_known"].value)
    assert by["diversity"].value == 0.0
    # the reference: the stand-in classifier's accuracy on these n images, computed here independently
    net = ctx._extractors["classifier"].module
    accuracy = float((net.logits(truth).argmax(-1) == digits.test_labels[:n]).double().mean())
    assert by["class_agreement"].value == pytest.approx(accuracy, abs=1e-12)
    assert by["class_agreement_floor"].value == pytest.approx(accuracy, abs=1e-12)
    assert by["restored_fid"].value == pytest.approx(by["restored_fid_floor"].value, abs=1e-9)
    assert grid["completions"].shape == (2, 5, *digits.spec.shape)
    # the retrieval reference, recomputed here by brute force over the training split
    train = digits.unit("train")
    known = corrupted.known.expand_as(truth)
    agree, sq = 0, []
    for o, k, t, label in zip(corrupted.observed, known, truth, digits.test_labels[:n]):
        j = int(torch.stack([((o - p)[k] ** 2).sum() for p in train]).argmin())
        done = torch.where(k, o, train[j])
        agree += int(net.logits(done[None]).argmax(-1)) == int(label)
        sq.append(float(((done - t)[~k] ** 2).mean()))
    assert by["class_agreement_retrieval"].value == pytest.approx(agree / n, abs=1e-12)
    assert by["mse_unknown_retrieval"].value == pytest.approx(sum(sq) / n, rel=1e-6)
    assert by["psnr_unknown_retrieval"].stderr > 0 and "Hays & Efros" in by["class_agreement_retrieval"].details["meaning"]
    # the known-part references (genbench.tasks.ambiguity), recomputed here from the cached classifier
    ref = ambiguity.known_part_conditional(digits, task.mask, tmp_path, torch.device("cpu"), epochs=2)
    q = ref.probabilities(corrupted.observed, corrupted.known)
    labels = digits.test_labels[:n]
    assert by["class_agreement_known_only"].value == pytest.approx(float((q.argmax(-1) == labels).double().mean()))
    assert by["class_agreement_sampler_ceiling"].value == pytest.approx(float(q[torch.arange(n), labels].mean()))
    assert by["class_agreement_sampler_ceiling"].details["estimator"] in ("cnn", "neighbours")
    # denoising has no known pixels to match on: no retrieval or known-part rows
    rows, _ = evaluate_task(model, Denoise(sigma=0.2), ctx, TaskOptions(n_images=4, completions=1))
    assert not any(m.metric.endswith(("_retrieval", "_known_only", "_ceiling")) for m in rows)


def test_models_without_the_capability_are_reported_not_crashed(digits, registry, tmp_path):
    model = Plain(Plain.Config(), digits.spec)
    rows, grid = evaluate_task(model, Inpaint("center"), stub_context(model, digits, registry, tmp_path),
                               TaskOptions(n_images=10))
    assert [m.metric for m in rows] == ["supported"] and rows[0].value == 0.0 and grid == {}
    assert "no complete()" in rows[0].details["reason"]


def test_pixelcnn_rows_say_which_completion_method_ran(digits, registry, tmp_path):
    from genbench.config import resolve_config
    from genbench_pixelcnn import PixelCNN

    model = PixelCNN(resolve_config(PixelCNN, "tiny", digits.spec, {}), digits.spec)
    ctx = stub_context(model, digits, registry, tmp_path)
    task = Inpaint("center")
    task.options = {"particles": 2}
    rows, _ = evaluate_task(model, task, ctx, TaskOptions(n_images=4, completions=1, ambiguity=False))
    by = {m.metric: m for m in rows}
    assert by["supported"].value == 1.0 and by["mse_known"].value == 0.0
    assert "class_agreement_known_only" not in by  # ambiguity=False: no known-part classifier
    assert by["supported"].details["method"].startswith("importance resampling, K=2")
    assert by["supported"].details["particles"] == 2 and by["supported"].details["setting"] == "center, particles=2"
    assert by["nfe"].value == 2 * (16 + 1)
    rows, _ = evaluate_task(model, Inpaint("bottom-half"), ctx, TaskOptions(n_images=4, completions=2,
                                                                           diversity_inputs=2, ambiguity=False))
    by = {m.metric: m for m in rows}
    assert by["supported"].value == 1.0 and by["mse_known"].value == 0.0 and by["nfe"].value == 32
    assert by["supported"].details["method"] == "raster-prefix exact" and "particles" not in by["nfe"].details


def test_colourise_needs_rgb_data_and_denoise_takes_no_mask(digits):
    with pytest.raises(TaskError, match="needs RGB data"):
        Colourise().check_data(digits.spec)
    with pytest.raises(TaskError, match="takes no --mask"):
        Denoise(mask="center")


def test_tasks_are_registered_through_their_hook(registry):
    assert {"inpaint", "outpaint", "denoise", "colourise"} <= set(registry.tasks.names())


def test_the_summary_line_shows_the_retrieval_reference_beside_the_class_agreement():
    from genbench.tasks.run import summary_line

    rows = [{"metric": "supported", "value": 1.0, "details": "{}"}, {"metric": "class_agreement", "value": 0.77},
            {"metric": "class_agreement_retrieval", "value": 0.8}, {"metric": "psnr_unknown", "value": 12.345}]
    assert summary_line(rows) == "class agreement 0.770 (nearest training image 0.800), PSNR unknown 12.35 dB"
    rows.append({"metric": "class_agreement_sampler_ceiling", "value": 0.79})
    assert summary_line(rows) == ("class agreement 0.770 (nearest training image 0.800) (exact sampler about 0.790), "
                                  "PSNR unknown 12.35 dB")
