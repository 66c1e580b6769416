import copy
import math

import pytest
import torch
from torch import nn

from genbench.model import DataSpec, GenerativeModel, ModelConfig, NLLEstimate


def test_dataspec_round_trip_levels():
    spec = DataSpec(1, 8, 8, 17)
    levels = torch.arange(17).reshape(1, 1, 1, 17).expand(1, 1, 8, 17)[:, :, :, :8]
    assert torch.equal(spec.to_levels(spec.to_unit(levels)), levels.to(torch.int64))


def test_quantise_maps_to_nearest_level_and_clamps():
    spec = DataSpec(1, 1, 4, 3)  # levels at 0, .5, 1
    x = torch.tensor([[[[-0.3, 0.24, 0.26, 1.7]]]])
    assert spec.quantise(x).tolist() == [[[[0, 0, 1, 2]]]]
    assert spec.quantise(x).dtype == torch.uint8


def test_bits_per_dim_is_nats_over_d_ln2():
    spec = DataSpec(3, 4, 5, 256)
    assert spec.dims == 60
    assert spec.bits_per_dim(60 * math.log(2) * 8) == pytest.approx(8.0)


def test_dataspec_rejects_nonsense():
    with pytest.raises(ValueError):
        DataSpec(1, 8, 8, 1)
    with pytest.raises(ValueError):
        DataSpec(0, 8, 8, 2)


def test_estimate_label_is_given_by_the_plugin_and_defaults_to_kind():
    assert NLLEstimate("IWAE", torch.zeros(1), "IWAE-100", {"k": 100}).label == "IWAE-100"
    assert NLLEstimate("ELBO", torch.zeros(1)).label == "ELBO"


class _Averaging(GenerativeModel):
    """A two-network model with a weight average, to test the base class's bookkeeping."""

    name = "averaging"

    def __init__(self, config, data, device="cpu"):
        super().__init__(config, data, device)
        self.networks = {"net": nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5)), "other": nn.Linear(2, 2)}
        self.averaged = {"ema": copy.deepcopy(self.networks["net"])}
        self.optimizers = {"opt": torch.optim.SGD(self.networks["net"].parameters(), lr=0.1)}

    def train_step(self, x):
        return {"loss": 0.0}

    def sample(self, n, *, steps=None, generator=None):
        return torch.rand(n, *self.data.shape, generator=generator)


def test_base_defaults_name_the_sampler_and_count_one_evaluation():
    model = _Averaging(ModelConfig(), DataSpec(1, 2, 2, 2))
    assert model.sampler_name(None) == "default" and model.sampler_name(20) == "20 steps"
    assert model.nfe(None) == 1 and model.nfe(20) == 1
    assert model.role == "model" and model.likelihood is None and not model.likelihood_is_exact()


def test_averaged_weights_are_checkpointed_not_counted_and_always_in_eval():
    spec = DataSpec(1, 2, 2, 2)
    model = _Averaging(ModelConfig(), spec)
    assert model.count_parameters() == (3 * 4 + 4) + (2 * 2 + 2)
    model.train(True)
    assert model.networks["net"].training and not model.averaged["ema"].training
    model.train(False)
    assert not model.networks["net"].training and not model.averaged["ema"].training
    with torch.no_grad():
        model.averaged["ema"][0].weight.fill_(0.5)
    state = model.state_dict()
    assert set(state) == {"networks", "averaged", "optimizers", "step", "extra"}
    fresh = _Averaging(ModelConfig(), spec)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.averaged["ema"][0].weight, torch.full((4, 3), 0.5))
    del state["averaged"]["ema"]
    with pytest.raises(ValueError, match="averaged"):
        fresh.load_state_dict(state)
