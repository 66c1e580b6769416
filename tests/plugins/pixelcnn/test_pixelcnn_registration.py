"""Registration and presets (the shared contract itself runs in tests/test_contract.py for every model)."""
from __future__ import annotations


import genbench_pixelcnn
from genbench_pixelcnn import PixelCNN


def test_registered_through_the_hook():
    assert genbench_pixelcnn.genbench_models() == [PixelCNN]
    assert PixelCNN.name == "pixelcnn" and PixelCNN.likelihood == "exact" and PixelCNN.likelihood_kind == "exact"
    assert {"tiny", "quick", "standard"} <= set(PixelCNN.presets)
