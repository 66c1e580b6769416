"""The shared model contract on the three contract specs (tiny preset), and registration."""
from __future__ import annotations

import pytest
import torch

from genbench.testing import CONTRACT_SPECS, check_model_contract
import genbench_pixelcnn
from genbench_pixelcnn import PixelCNN


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(CONTRACT_SPECS))
def test_contract(name):
    check_model_contract(PixelCNN, CONTRACT_SPECS[name])


def test_registered_through_the_hook():
    assert genbench_pixelcnn.genbench_models() == [PixelCNN]
    assert PixelCNN.name == "pixelcnn" and PixelCNN.likelihood == "exact" and PixelCNN.likelihood_kind == "exact"
    assert {"tiny", "quick", "standard"} <= set(PixelCNN.presets)
