"""bits/dim of the discrete test data: -log2 P(x) / D, with the estimate's kind and standard error."""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import torch
from torch import Tensor

from genbench.metrics.base import EvalContext, Measurement, Metric
from genbench.metrics.display import MetricDisplay
from genbench.model import GenerativeModel, NLLEstimate


@torch.no_grad()
def nll_over(
    model: GenerativeModel, x_unit: Tensor, batch_size: int, device: torch.device, primary_only: bool = False
) -> dict[str, tuple[NLLEstimate, Tensor]]:
    """Every NLL estimate of the model over ``x_unit`` in batches: label -> (last estimate, nats per image).

    ``primary_only`` evaluates just ``model.nll`` (what validation-based checkpoint selection uses).
    """
    model.train(False)
    per_label: dict[str, list[Tensor]] = defaultdict(list)
    last: dict[str, NLLEstimate] = {}
    for i in range(0, len(x_unit), batch_size):
        xb = x_unit[i : i + batch_size].to(device)
        with torch.autocast(torch.device(device).type, enabled=False):  # likelihoods in fp32, even in bf16 runs
            estimates = [NLLEstimate("primary", model.nll(xb))] if primary_only else model.nll_estimates(xb)
        for est in estimates:
            nats = est.nats.detach().double().cpu().reshape(-1)
            if not torch.isfinite(nats).all():
                raise FloatingPointError(f"model {model.name!r} returned a non-finite {est.label} NLL")
            per_label[est.label].append(nats)
            last[est.label] = est
    return {k: (last[k], torch.cat(v)) for k, v in per_label.items()}


def likelihood_images(data: Any, split: str, config: Any) -> Tensor:
    """The images of ``split`` ("val" or "test", in [0, 1]) a likelihood is evaluated on: the first
    ``nll_val_images`` / ``nll_test_images`` of ``config`` (``ModelConfig``; None or absent: the whole split)."""
    return data.unit(split)[: getattr(config, f"nll_{split}_images", None)]


def summarise(nats: Tensor, dims: int) -> tuple[float, float]:
    """Mean bits/dim and its standard error over images."""
    bpd = nats / (dims * math.log(2.0))
    se = float(bpd.std(unbiased=True) / math.sqrt(len(bpd))) if len(bpd) > 1 else float("nan")
    return float(bpd.mean()), se


class BitsPerDim(Metric):
    """Negative log-likelihood (or its bound) of the test split in bits per sub-pixel."""

    name = "bits_per_dim"
    description = "-log2 P(x)/D of the discrete test split, per estimate kind (exact, ELBO, IWAE-k, VLB), with std. error"
    needs = "likelihood"
    higher_is_better = False
    display = {"bits_per_dim": MetricDisplay("bits/dim", "likelihood", direction="lower", per_model=True)}
    batch_size = 100

    def compute(self, ctx: EvalContext) -> list[Measurement]:
        rows = []
        images, total = likelihood_images(ctx.data, "test", ctx.model.config), len(ctx.data.test)
        subset = {"test_images": f"first {len(images)} of {total}"} if len(images) < total else {}
        for label, (est, nats) in nll_over(ctx.model, images, self.batch_size, ctx.device).items():
            mean, se = summarise(nats, ctx.data.spec.dims)
            rows.append(Measurement(
                metric="bits_per_dim", value=mean, stderr=se, unit="bits/dim", higher_is_better=False,
                kind=label, n=len(nats), reference=f"test ({ctx.data.split_id})", details={**est.params, **subset},
            ))
        return rows
