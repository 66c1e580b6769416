import math

import pytest
import torch

from genbench.model import DataSpec, NLLEstimate


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


def test_iwae_label_names_k():
    assert NLLEstimate("IWAE", torch.zeros(1), {"k": 100}).label == "IWAE-100"
    assert NLLEstimate("ELBO", torch.zeros(1)).label == "ELBO"
