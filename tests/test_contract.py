"""The one shared contract test, run for every model that comes in through the entry-point group: the
contract on each contract shape, and the likelihood's normalisation on every image of tiny shapes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genbench.model import GenerativeModel
from genbench.plugins import build_registry
from genbench.testing import (
    CONTRACT_SPECS,
    LIKELIHOOD_SPECS,
    accepts_spec,
    check_likelihood_normalised,
    check_model_contract,
)

REGISTRY = build_registry(autoload=True)
MODELS = REGISTRY.models.names()
LIKELIHOOD_MODELS = [m for m in MODELS if REGISTRY.models.get(m).likelihood is not None]


def test_builtin_families_are_registered():
    assert {"independent", "ddpm", "vae", "gan", "pixelcnn", "ldm"} <= set(MODELS)


@pytest.mark.parametrize("spec_name", list(CONTRACT_SPECS))
@pytest.mark.parametrize("model_name", MODELS)
def test_model_contract(model_name: str, spec_name: str) -> None:
    check_model_contract(REGISTRY.models.get(model_name), CONTRACT_SPECS[spec_name])


@pytest.mark.parametrize("spec_name", list(LIKELIHOOD_SPECS))
@pytest.mark.parametrize("model_name", LIKELIHOOD_MODELS)
def test_likelihood_sums_to_one_over_every_image(model_name: str, spec_name: str) -> None:
    """Exact: sum_x P(x) = 1; bound: sum_x exp(-bound(x)) <= 1, over all K**D images of a tiny shape."""
    cls, spec = REGISTRY.models.get(model_name), LIKELIHOOD_SPECS[spec_name]
    if not accepts_spec(cls, spec):
        pytest.skip(f"{model_name} cannot be built on {spec_name}")
    check_likelihood_normalised(cls, spec)


@pytest.mark.parametrize("model_name", LIKELIHOOD_MODELS)
def test_every_likelihood_is_checked_on_some_tiny_shape(model_name: str) -> None:
    cls = REGISTRY.models.get(model_name)
    assert any(accepts_spec(cls, spec) for spec in LIKELIHOOD_SPECS.values()), (
        f"{model_name} declares a likelihood but takes none of the enumerable shapes {list(LIKELIHOOD_SPECS)}")


def test_a_broken_likelihood_is_caught():
    """The check has teeth: probabilities that do not sum to 1 fail it."""
    cls = REGISTRY.models.get("independent")

    class Leaky(cls):  # type: ignore[misc, valid-type]
        name = "leaky"

        def nll(self, x):
            return super().nll(x) + 0.01

    with pytest.raises(AssertionError, match="sum to"):
        check_likelihood_normalised(Leaky, LIKELIHOOD_SPECS["1x3x3-K2"])


class Toy(GenerativeModel):
    """One bias per sub-pixel, fitted to the batch mean with Adam; samples are its sigmoid."""

    name = "toy"
    presets = {"tiny": {}}

    def __init__(self, config, data, device="cpu"):
        super().__init__(config, data, device)
        self.networks = {"net": nn.Linear(1, data.dims).to(self.device)}
        self.optimizers = {"opt": torch.optim.Adam(self.networks["net"].parameters(), lr=0.1)}

    def train_step(self, x):
        loss = ((self.networks["net"].bias - x.flatten(1).mean(0)) ** 2).mean()
        self.optimizers["opt"].zero_grad()
        loss.backward()
        self.optimizers["opt"].step()
        return {"loss": float(loss.detach())}

    def sample(self, n, *, steps=None, generator=None):
        return torch.sigmoid(self.networks["net"].bias.detach()).expand(n, -1).reshape(n, *self.data.shape)


def test_the_toy_model_passes():
    check_model_contract(Toy)


def test_optimiser_state_missing_from_a_checkpoint_is_caught():
    """Samples match after the reload, but the second training step does not: Adam's moments were lost."""

    class Forgetful(Toy):
        def state_dict(self):
            return {**super().state_dict(), "optimizers": {}}

    with pytest.raises(AssertionError, match="after reloading a checkpoint"):
        check_model_contract(Forgetful)


def test_nfe_that_ignores_steps_is_caught():
    class Stepless(Toy):
        supports_steps = True

    with pytest.raises(AssertionError, match="nfe must follow steps"):
        check_model_contract(Stepless)


def test_an_averaged_copy_that_trains_or_counts_is_caught():
    class Averaged(Toy):
        def __init__(self, config, data, device="cpu"):
            super().__init__(config, data, device)
            self.averaged = {"ema": nn.Sequential(nn.Linear(1, data.dims), nn.Dropout(0.1)).to(self.device)}

    check_model_contract(Averaged)  # the base class keeps it in eval mode and out of the count

    class Trains(Averaged):
        def train(self, mode=True):
            super().train(mode)
            self.averaged["ema"].train(mode)

    with pytest.raises(AssertionError, match="in train mode after train"):
        check_model_contract(Trains)

    class Counts(Averaged):
        def count_parameters(self):
            return super().count_parameters() + sum(p.numel() for p in self.averaged["ema"].parameters())

    with pytest.raises(AssertionError, match="averaged excluded"):
        check_model_contract(Counts)
