"""The shared contract every model plugin passes; importable so third parties can run it.

    from genbench.testing import check_model_contract, check_likelihood_normalised
    def test_contract():
        check_model_contract(MyModel)
        check_likelihood_normalised(MyModel, LIKELIHOOD_SPECS["1x3x3-K2"])   # if MyModel has a likelihood

``check_model_contract`` checks: the class attributes are well formed; a training step returns finite
scalar losses; samples have the data's shape, lie in [0, 1] and are deterministic under a fixed
generator; ``nfe(steps)`` is a positive count that follows ``steps`` for models with ``supports_steps``;
``nll`` exists iff a likelihood is declared and is finite and >= 0 nats (a probability mass is <= 1);
weight-averaged copies (``averaged``) stay in eval mode and are not counted as parameters; a
``state_dict`` saved with ``torch.save`` loads with ``weights_only=True`` into a fresh model that draws
identical samples and whose next training steps give the same losses as the original's under the same
global RNG state (networks, averaged copies, optimisers and step all restored).

``check_likelihood_normalised`` enumerates all K**D images of a tiny data spec: an exact likelihood's
probabilities exp(-nll) sum to 1, a bound's to at most 1 (a bound on -log P(x) is >= -log P(x)).
"""
from __future__ import annotations

import io
import itertools
import math
from dataclasses import dataclass

import torch

from genbench.config import resolve_config
from genbench.model import DataSpec, GenerativeModel, ModelConfig
from genbench.runner.device import deterministic_kernels, pick_device, preserved_rng, seed_everything

DIGITS_SPEC = DataSpec(channels=1, height=8, width=8, levels=17)
CONTRACT_SPECS = {
    "8x8x1-K17": DIGITS_SPEC,
    "28x28x1-K256": DataSpec(channels=1, height=28, width=28, levels=256),
    "32x32x3-K256": DataSpec(channels=3, height=32, width=32, levels=256),
}
#: data specs small enough to enumerate every image: 2**9 = 512 (a spatial order) and
#: 2**12 = 4096 (colours and rows); a model that rejects a spec (ValueError) is not checked on it
LIKELIHOOD_SPECS = {
    "1x3x3-K2": DataSpec(channels=1, height=3, width=3, levels=2),
    "3x2x2-K2": DataSpec(channels=3, height=2, width=2, levels=2),
}
LIKELIHOOD_RTOL = 1e-4
RELOAD_SEED = 4321


def tiny_model(model_cls: type[GenerativeModel], spec: DataSpec, overrides: dict | None = None, seed: int = 0,
               device: str = "cpu") -> GenerativeModel:
    """A fresh, untrained ``model_cls`` at its ``tiny`` preset (with ``overrides``) for ``spec``: weights drawn
    after ``torch.manual_seed(seed)``, in eval mode (what restoration and sampling tests start from)."""
    torch.manual_seed(seed)
    model = model_cls(resolve_config(model_cls, "tiny", spec, overrides or {}), spec, device)
    model.train(False)
    return model


def contract_batch(spec: DataSpec, n: int = 8, seed: int = 0) -> torch.Tensor:
    """A batch of structured images (blobs plus noise) at the data's levels, as floats in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, spec.height), torch.linspace(-1, 1, spec.width), indexing="ij")
    centres = torch.rand(n, 2, generator=g) - 0.5
    blob = torch.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) * 4)
    img = blob[:, None].expand(n, spec.channels, spec.height, spec.width)
    img = (img + 0.1 * torch.rand(n, spec.channels, spec.height, spec.width, generator=g)).clamp(0, 1)
    return spec.to_unit(spec.to_levels(img))


def all_images(spec: DataSpec) -> torch.Tensor:
    """Every one of the K**D images of ``spec`` (as unit floats), in lexicographic order of their levels."""
    if spec.levels**spec.dims > 2**16:
        raise ValueError(f"{spec.levels}**{spec.dims} images are too many to enumerate")
    levels = torch.tensor(list(itertools.product(range(spec.levels), repeat=spec.dims)), dtype=torch.int64)
    return spec.to_unit(levels.reshape(-1, *spec.shape))


def accepts_spec(model_cls: type[GenerativeModel], spec: DataSpec, preset: str = "tiny") -> bool:
    """Whether ``model_cls`` can be built on ``spec`` (a model rejects a shape it cannot take with ValueError)."""
    try:
        model_cls(resolve_config(model_cls, preset, spec), spec, "cpu")
    except ValueError:
        return False
    return True


def _draw(model: GenerativeModel, n: int, seed: int, steps: int | None = None) -> torch.Tensor:
    model.train(False)
    with torch.inference_mode():
        return model.sample(n, steps=steps, generator=torch.Generator().manual_seed(seed)).detach().cpu()


def _seeded_step(model: GenerativeModel, x: torch.Tensor, seed: int) -> dict[str, float]:
    """One training step with every global RNG (torch on all devices, numpy, random) seeded by ``seed``."""
    seed_everything(seed)
    model.train(True)
    losses = model.train_step(x)
    model.step += 1
    return {k: float(v) for k, v in losses.items()}


def _reloaded(model: GenerativeModel, model_cls: type[GenerativeModel], config, spec: DataSpec, device: str):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, map_location=device, weights_only=True)
    fresh = model_cls(config, spec, device)
    fresh.load_state_dict(state)
    return fresh


def _check_same_weights(model: GenerativeModel, fresh: GenerativeModel, name: str, exact: bool) -> None:
    """After the same steps, the networks and averaged copies of both models hold the same tensors."""
    ours, theirs = model.state_dict(), fresh.state_dict()
    for group in ("networks", "averaged"):
        for key, tensors in ours[group].items():
            for tname, t in tensors.items():
                u = theirs[group][key][tname]
                same = torch.equal(t, u) if exact else torch.allclose(t.double(), u.double(), rtol=1e-5, atol=1e-7)
                assert same, f"{name}: after the same training steps, {group}[{key!r}].{tname} differs from the reloaded model's"


def _check_attributes(model_cls: type[GenerativeModel], name: str, preset: str) -> None:
    assert isinstance(name, str) and name, "model class needs a non-empty string `name`"
    lik = model_cls.likelihood
    assert lik is None or (isinstance(lik, str) and lik), f"{name}: likelihood must be a kind label ('exact', ...) or None"
    assert model_cls.likelihood_is_exact() == (lik == "exact"), f"{name}: likelihood_is_exact() disagrees with likelihood"
    assert isinstance(model_cls.role, str) and model_cls.role, f"{name}: role must be a non-empty string"
    assert preset in model_cls.presets or not model_cls.presets, (
        f"{name}: needs a {preset!r} preset for tests (or no presets at all: the Config defaults)")


def _check_sampler_counts(model: GenerativeModel, name: str) -> None:
    """``nfe(steps)`` is a positive int for every configured setting and follows ``steps`` where supported."""
    settings = list(dict.fromkeys([None, *model.config.sample_steps]))
    for steps in settings:
        nfe = model.nfe(steps)
        assert isinstance(nfe, int) and nfe >= 1, f"{name}: nfe({steps}) must be an int >= 1, got {nfe!r}"
        label = model.sampler_name(steps)
        assert isinstance(label, str) and label, f"{name}: sampler_name({steps}) must be a non-empty string"
    if type(model).supports_steps:
        n2, n4 = model.nfe(2), model.nfe(4)
        assert n2 >= 1 and n4 >= 1, f"{name}: nfe(2) = {n2}, nfe(4) = {n4}; both must be >= 1"
        assert n2 != n4, f"{name}: supports_steps but nfe(2) == nfe(4) == {n2}: nfe must follow steps"
        assert model.sampler_name(2) != model.sampler_name(4), f"{name}: sampler_name(2) == sampler_name(4)"


def _check_averaged(model: GenerativeModel, name: str) -> None:
    """Averaged copies: a dict of modules outside ``networks``, in eval mode after train(True), not counted."""
    assert isinstance(model.averaged, dict), f"{name}: `averaged` must be a dict of modules"
    net_ids = {id(m) for net in model.networks.values() for m in net.modules()}
    for key, avg in model.averaged.items():
        assert isinstance(avg, torch.nn.Module), f"{name}: averaged[{key!r}] is not an nn.Module"
        assert not any(id(m) in net_ids for m in avg.modules()), f"{name}: averaged[{key!r}] is also in networks"
    model.train(True)
    for key, avg in model.averaged.items():
        training = [n for n, m in avg.named_modules() if m.training]
        assert not training, f"{name}: averaged[{key!r}] is in train mode after train(True) ({training[:3]})"
    seen: set[int] = set()
    expected = 0
    for net in model.networks.values():
        for p in net.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                expected += p.numel()
    counted = model.count_parameters()
    assert counted == expected, f"{name}: count_parameters() = {counted}, but networks hold {expected} (averaged excluded)"


def _check_likelihood(model: GenerativeModel, x: torch.Tensor, name: str) -> None:
    model.train(False)
    if type(model).likelihood is None:
        try:
            model.nll(x)
        except NotImplementedError:
            return
        raise AssertionError(f"{name}: declares no likelihood but nll() returned a value")
    with torch.no_grad():
        nll = model.nll(x)
        estimates = model.nll_estimates(x)
    assert tuple(nll.shape) == (len(x),), f"{name}: nll must return one value per image, got {tuple(nll.shape)}"
    assert torch.isfinite(nll).all(), f"{name}: nll is not finite"
    assert (nll >= 0).all(), f"{name}: nll < 0 nats means P(x) > 1: not a likelihood of discrete data"
    assert estimates, f"{name}: nll_estimates() returned nothing"
    for est in estimates:
        assert isinstance(est.label, str) and est.label, f"{name}: an estimate of kind {est.kind!r} has no label"
        assert tuple(est.nats.shape) == (len(x),), f"{name}: {est.label} must give one value per image"
        assert torch.isfinite(est.nats).all() and (est.nats >= 0).all(), f"{name}: {est.label} estimate invalid"


def check_model_contract(
    model_cls: type[GenerativeModel], spec: DataSpec = DIGITS_SPEC, preset: str = "tiny", device: str = "cpu"
) -> None:
    """Raise AssertionError naming the first broken promise of ``model_cls``.

    Runs as the runner runs a cell (deterministic cuDNN kernels on CUDA) and leaves the caller's random
    state as it was."""
    dev = pick_device(device)
    with deterministic_kernels(dev), preserved_rng():
        _check_contract(model_cls, spec, preset, str(dev))


def _check_contract(model_cls: type[GenerativeModel], spec: DataSpec, preset: str, device: str) -> None:
    name = getattr(model_cls, "name", model_cls.__name__)
    _check_attributes(model_cls, name, preset)
    config = resolve_config(model_cls, preset, spec)
    torch.manual_seed(0)
    model = model_cls(config, spec, device)
    x = contract_batch(spec).to(device)

    model.train(True)
    losses = model.train_step(x)
    model.step += 1
    assert isinstance(losses, dict) and "loss" in losses, f"{name}: train_step must return a dict with a 'loss' key"
    for k, v in losses.items():
        assert math.isfinite(float(v)), f"{name}: train_step loss {k!r} is not finite ({v})"

    a = _draw(model, 4, seed=123)
    assert tuple(a.shape) == (4, *spec.shape), f"{name}: sample(4) has shape {tuple(a.shape)}, expected {(4, *spec.shape)}"
    assert torch.isfinite(a).all(), f"{name}: samples are not finite"
    assert a.min() >= 0.0 and a.max() <= 1.0, f"{name}: samples must lie in [0, 1], got [{a.min():.3f}, {a.max():.3f}]"
    b = _draw(model, 4, seed=123)
    assert torch.equal(a, b), f"{name}: sample() is not deterministic under a fixed generator"
    if model_cls.supports_steps:
        c = _draw(model, 2, seed=1, steps=2)
        assert tuple(c.shape) == (2, *spec.shape), f"{name}: sample(steps=2) has the wrong shape"
    _check_sampler_counts(model, name)
    _check_likelihood(model, x, name)
    _check_averaged(model, name)
    state_keys = set(model.state_dict())
    assert {"networks", "averaged", "optimizers", "step"} <= state_keys, f"{name}: state_dict lacks keys ({state_keys})"

    fresh = _reloaded(model, model_cls, config, spec, device)
    assert fresh.step == model.step, f"{name}: step not restored by load_state_dict"
    assert torch.equal(_draw(fresh, 4, seed=123), a), f"{name}: a reloaded model draws different samples"
    # the reloaded model trains on exactly as the original does: same losses for two steps (the second
    # one sees the restored optimiser state), then the same weights (the averaged copies followed too)
    exact = torch.device(device).type == "cpu"
    for i in range(2):
        before = _seeded_step(model, x, RELOAD_SEED + i)
        after = _seeded_step(fresh, x, RELOAD_SEED + i)
        assert before.keys() == after.keys(), f"{name}: train_step after reload returns other keys"
        for k, v in before.items():
            same = v == after[k] or (math.isnan(v) and math.isnan(after[k]))
            if not exact:
                same = same or math.isclose(v, after[k], rel_tol=1e-5, abs_tol=1e-7)
            assert same, (f"{name}: training step {i + 1} after reloading a checkpoint gives {k} = {after[k]!r}, "
                          f"without the reload {v!r}: some training state is not in state_dict")
    _check_same_weights(model, fresh, name, exact)


def check_likelihood_normalised(
    model_cls: type[GenerativeModel], spec: DataSpec, preset: str = "tiny", device: str = "cpu",
    train_steps: int = 3, rtol: float = LIKELIHOOD_RTOL,
) -> float:
    """Sum exp(-nll) over every image of a tiny ``spec`` after ``train_steps`` steps; returns the sum.

    Exact likelihood: sum_x P(x) = 1 (within ``rtol``), for the primary ``nll`` and every estimate of
    kind "exact".  Bound: -ELBO / -VLB >= -log P(x), so sum_x exp(-bound(x)) <= 1 (+ ``rtol``); only the
    primary ``nll`` is checked, since the exponential of an importance-weighted estimate such as
    IWAE-k is an unbiased estimate of P(x) and may sum to a little above 1.
    """
    assert model_cls.likelihood is not None, f"{model_cls.name}: declares no likelihood"
    dev = pick_device(device)
    with deterministic_kernels(dev), preserved_rng():
        return _check_normalised(model_cls, spec, preset, str(dev), train_steps, rtol)


def _check_normalised(model_cls: type[GenerativeModel], spec: DataSpec, preset: str, device: str, train_steps: int,
                      rtol: float) -> float:
    name = model_cls.name
    torch.manual_seed(0)
    model = model_cls(resolve_config(model_cls, preset, spec), spec, device)
    batch = contract_batch(spec, n=16).to(device)
    for _ in range(train_steps):  # a model away from its initialisation (a skewed one for counting models)
        model.train(True)
        model.train_step(batch)
        model.step += 1
    model.train(False)
    x = all_images(spec)
    totals: dict[str, float] = {}
    with torch.no_grad():
        for i in range(0, len(x), 1024):
            chunk = x[i : i + 1024].to(device)
            parts = {"nll": model.nll(chunk)}
            if model_cls.likelihood_is_exact():
                parts.update({e.label: e.nats for e in model.nll_estimates(chunk) if e.kind == "exact"})
            for label, nats in parts.items():
                totals[label] = totals.get(label, 0.0) + float(torch.exp(-nats.double()).sum())
    for label, total in totals.items():
        where = f"{name} on {spec.channels}x{spec.height}x{spec.width}, K={spec.levels} ({len(x)} images), {label}"
        if model_cls.likelihood_is_exact():
            assert abs(total - 1.0) <= rtol, f"{where}: exact probabilities sum to {total:.8f}, not 1"
        else:
            assert total <= 1.0 + rtol, f"{where}: exp(-bound) sums to {total:.8f} > 1: not a bound on -log P(x)"
    return totals["nll"]


@dataclass
class ReplayConfig(ModelConfig):
    max_steps: int | None = 4


class ReplayModel(GenerativeModel):
    """Keeps every training batch it sees and samples by replaying them: each sample IS a training image.

    The positive case for memorisation checks (a metric or report that does not flag it is broken).
    """

    name = "replay"
    Config = ReplayConfig
    presets = {"tiny": {"max_steps": 4, "batch_size": 64, "n_samples": 64, "sample_batch_size": 64}}

    def __init__(self, config: ModelConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        self.seen = torch.zeros(0, *data.shape)

    def train_step(self, x: torch.Tensor) -> dict[str, float]:
        self.seen = torch.cat([self.seen, x.detach().cpu()])
        return {"loss": 0.0}

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.seen[torch.randint(len(self.seen), (n,), generator=generator)]

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"seen": self.seen}

    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.seen = state["seen"]
