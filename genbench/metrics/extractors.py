"""Feature extractors for FID/KID: a classifier fitted to the data set's own labels.

Inception features are meaningless on 8x8 digits, so, like the "domain classifier"
FID variants used for MNIST, genbench trains a small CNN on the training split's
labels once per data set (cached by the sha256 of the data and of this recipe)
and uses its penultimate 128-d activations.  Its test accuracy is recorded with
every FID row.  A data set without labels gets the same network at a fixed random
initialisation ("random-cnn"), named as such in every row.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench.data.base import DataSplits
from genbench.io import atomic_torch_save, atomic_write_json

RECIPE_VERSION = "classifier-v1"
FEATURES = 128


class ClassifierNet(nn.Module):
    """Conv(32)-Conv(64)-pool-Conv(128)-Conv(128)-global-avg -> 128-d features -> logits."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.GELU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.GELU(),
            nn.Conv2d(64, 128, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv2d(128, FEATURES, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURES, num_classes)
        self.num_features = FEATURES

    def forward(self, x: Tensor) -> Tensor:
        """Features of images in [0, 1] (what torchmetrics' FID calls with normalize=True)."""
        return self.body(x * 2.0 - 1.0)

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.forward(x))


@dataclass
class FeatureExtractor:
    """A named, hashed feature network; ``module(x)`` maps images in [0, 1] to features."""

    name: str
    module: ClassifierNet
    sha256: str
    accuracy: float | None  # test-split accuracy of the classifier, None for random features

    @torch.no_grad()
    def features(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        dev = next(self.module.parameters()).device
        return torch.cat([self.module(x[i : i + batch_size].to(dev)).double().cpu() for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def probabilities(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Class probabilities (only meaningful for a trained classifier)."""
        dev = next(self.module.parameters()).device
        return torch.cat(
            [F.softmax(self.module.logits(x[i : i + batch_size].to(dev)), -1).cpu() for i in range(0, len(x), batch_size)]
        )


def weights_sha256(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_classifier(data: DataSplits, device: torch.device, epochs: int = 40, seed: int = 0) -> ClassifierNet:
    """Fit the classifier on the train split (Adam, label smoothing 0.1, flips never: digits are chiral)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = ClassifierNet(data.spec.channels, int(data.num_classes or int(data.train_labels.max()) + 1)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    x, y = data.unit("train"), data.train_labels
    n, bs = len(x), 128
    steps = epochs * max(1, n // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - bs + 1 if n >= bs else 1, bs):
            idx = perm[i : i + bs]
            xb = x[idx].to(device)
            # small random shifts (+-1 px) so the features are not brittle to sampler jitter
            shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(net.logits(xb), y[idx].to(device), label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def _cache_key(data: DataSplits, recipe: str) -> str:
    return hashlib.sha256(f"{data.data_hash}:{recipe}".encode()).hexdigest()[:20]


def get_extractor(name: str, data: DataSplits, cache_dir: Path, device: torch.device) -> FeatureExtractor:
    """The classifier extractor for ``data`` (trained once, cached); "random-cnn" without labels."""
    if name not in ("classifier", "random-cnn"):
        from genbench.plugins import unknown_name_message

        raise KeyError(unknown_name_message("feature extractor", name, ["classifier", "random-cnn"]))
    if name == "classifier" and not data.has_labels:
        name = "random-cnn"
    recipe = f"{RECIPE_VERSION}:{name}"
    key = _cache_key(data, recipe)
    path = Path(cache_dir) / "extractors" / f"{name}-{key}.pt"
    classes = int(data.num_classes or 10)
    net = ClassifierNet(data.spec.channels, classes)
    accuracy: float | None = None
    if path.exists():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(blob["state"])
        accuracy = blob["accuracy"]
        net = net.to(device).eval()
    elif name == "random-cnn":
        torch.manual_seed(0)
        net = ClassifierNet(data.spec.channels, classes).to(device).eval()
    else:
        net = train_classifier(data, device)
        with torch.no_grad():
            pred = torch.cat([net.logits(data.unit("test")[i : i + 1000].to(device)).argmax(-1).cpu() for i in range(0, len(data.test), 1000)])
        accuracy = float((pred == data.test_labels).float().mean())
        atomic_torch_save(path, {"state": {k: v.cpu() for k, v in net.state_dict().items()}, "accuracy": accuracy})
        atomic_write_json(path.with_suffix(".json"), {"accuracy": accuracy, "recipe": recipe})
    return FeatureExtractor(name=name, module=net, sha256=weights_sha256(net), accuracy=accuracy)
