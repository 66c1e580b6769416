"""Feature extractors for FID/KID/precision-recall: plugins found through ``genbench_extractors()``.

A feature extractor maps images in [0, 1] (N, C, H, W) to (N, d) float32 features and
says exactly how: its name, the sha256 of the weights that produce the features, how
images are resized, d.  Built in:

- ``classifier``: a small CNN fitted to the data set's own labels (once per data set,
  cached by the sha256 of the data and of this recipe); penultimate 128-d activations,
  native resolution.  Inception features are meaningless on 8x8 digits, so, like the
  "domain classifier" FID variants used for MNIST, this is genbench's default.  Its
  test accuracy is recorded with every row.  A data set without labels gets the same
  network at a fixed random initialisation (``random-cnn``), named as such in every row.
- ``random-cnn``: that randomly initialised network, on purpose, its 128-d features ZCA-whitened on the
  data set's training split (whitening.py: ridge 1e-3 x the mean eigenvalue), so FIDs are in units of the
  training data's spread (a floor of about 20 on 8x8 digits, not 1e-6); the whitening, its ridge and
  the n it was fitted on are recorded in every row's details.
- ``inception``: InceptionV3 pool3 (2048-d), the standard FID network (see inception.py).
"""
from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genbench.data.base import DataSplits
from genbench.io import atomic_write_json, load_verified, save_verified
from genbench.metrics.whitening import RIDGE, Whitened, fit_whitening

if TYPE_CHECKING:
    from genbench.plugins import Registry

RECIPE_VERSION = "classifier-v3"
RANDOM_RECIPE_VERSION = "random-cnn-v2"  # v2: features whitened on the training split
MAX_TRAIN_STEPS = 1500  # a fixed optimisation budget, so large data sets (60k images) train in about a minute
FEATURES = 128


class FeatureExtractor(abc.ABC):
    """A loaded, named, hashed feature network.  Subclasses are extractor plugins.

    ``load`` builds the extractor (for ``data`` when it depends on the data set);
    ``module(x)`` maps images in [0, 1] on the module's device to features (what
    torchmetrics' metrics accept as ``feature=``); ``features`` does it in batches and
    returns float32 CPU features.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    batch_size: ClassVar[int] = 1000

    def __init__(self, module: nn.Module, sha256: str, dims: int, resize: str, *, name: str | None = None,
                 accuracy: float | None = None, details: dict[str, Any] | None = None) -> None:
        self.module = module
        self.sha256 = sha256
        self.dims = dims
        self.resize = resize
        self.accuracy = accuracy  # test-split accuracy of a trained classifier, else None
        self.details = dict(details or {})
        if name is not None:
            self.name = name  # e.g. "random-cnn" when "classifier" was asked for on unlabelled data

    @classmethod
    @abc.abstractmethod
    def load(cls, data: DataSplits | None, cache_dir: Path, device: torch.device, **options: Any) -> FeatureExtractor:
        """Build or load the extractor; raise with a one-line message saying what is missing."""

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @torch.inference_mode()
    def features(self, x: Tensor, batch_size: int | None = None, on_device: bool = False) -> Tensor:
        """Features (N, d), float32, of images in [0, 1] (N, C, H, W): on the CPU, or with ``on_device`` where the
        extractor runs (no copy to the host, hence no synchronisation, per batch: what streamed statistics use)."""
        bs = batch_size or self.batch_size
        dev = self.device
        out = [self.module(x[i : i + bs].to(dev, torch.float32)).float() for i in range(0, len(x), bs)]
        if not out:
            return torch.zeros(0, self.dims, device=dev if on_device else "cpu")
        f = torch.cat(out)
        return f if on_device else f.cpu()

    def provenance(self) -> dict[str, Any]:
        """What every row records about the features."""
        out = {"extractor": self.name, "extractor_sha256": self.sha256, "resize": self.resize, "feature_dims": self.dims}
        if self.accuracy is not None:
            out["extractor_test_accuracy"] = self.accuracy
        out.update(self.details)
        return out


class ClassifierNet(nn.Module):
    """Conv(32)-Conv(32)-Conv(64, stride 2)-Conv(128)-global-avg -> 128-d features -> logits.

    Images larger than 16 px are first downsampled by a stride-2 first convolution
    (28x28 -> 14x14, 32x32 -> 16x16), which keeps the cost on CPU near that of 8x8 digits x 4.
    """

    def __init__(self, channels: int, num_classes: int, height: int = 8) -> None:
        super().__init__()
        first_stride = 2 if height > 16 else 1
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1, stride=first_stride), nn.GELU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.GELU(),
            nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv2d(64, FEATURES, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(FEATURES, num_classes)
        self.num_features = FEATURES

    def forward(self, x: Tensor) -> Tensor:
        """Features of images in [0, 1] (what torchmetrics' FID calls with normalize=True)."""
        return self.body(x * 2.0 - 1.0)

    def logits(self, x: Tensor) -> Tensor:
        return self.head(self.forward(x))


def weights_sha256(module: nn.Module, exclude: tuple[str, ...] = ()) -> str:
    """sha256 over the module's tensors (sorted names, raw bytes), skipping names that start with ``exclude``."""
    return state_sha256(module.state_dict(), exclude)


def state_sha256(state: dict[str, Tensor], exclude: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        if exclude and k.startswith(exclude):
            continue
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def train_classifier(data: DataSplits, device: torch.device, epochs: int = 60, seed: int = 0) -> ClassifierNet:
    """Fit the classifier on the train split (``fit_classifier`` on the unit images and their labels)."""
    classes = int(data.num_classes or int(data.train_labels.max()) + 1)
    return fit_classifier(data.unit("train"), data.train_labels, classes, data.spec.height, device, epochs, seed)


def fit_classifier(x: Tensor, y: Tensor, classes: int, height: int, device: torch.device, epochs: int = 60,
                   seed: int = 0, prepare: Callable[[Tensor, torch.Generator], Tensor] | None = None,
                   channels: int | None = None) -> ClassifierNet:
    """A ``ClassifierNet`` fitted to images ``x`` (n, C, H, W) in [0, 1] and labels ``y``: Adam with one-cycle
    lr, plain cross-entropy (no label smoothing, which would cap confidence near 0.9 and make
    ``confident_share`` meaningless), +-1 px shifts (no flips: digits are chiral); ``epochs`` passes or
    ``MAX_TRAIN_STEPS`` steps, whichever is fewer.  ``prepare(batch, generator)`` (optional) turns each shifted
    batch into the network's input of ``channels`` channels (e.g. a masked image plus its mask), drawing from the
    same generator.  The initial weights come from torch's CPU generator seeded with ``seed`` inside a fork of
    it, so the fit leaves the caller's random state as it was."""
    gen = torch.Generator().manual_seed(seed)
    net = seeded_init(lambda: ClassifierNet(channels or x.shape[1], classes, height), seed).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    n, bs = len(x), min(128, len(x))
    per_epoch = max(1, n // bs)
    steps = min(epochs * per_epoch, MAX_TRAIN_STEPS)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for step in range(steps):
        if step % per_epoch == 0:
            perm = torch.randperm(n, generator=gen)
        i = (step % per_epoch) * bs
        idx = perm[i : i + bs]
        xb = x[idx]
        # small random shifts (+-1 px) so the features are not brittle to sampler jitter
        shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
        xb = torch.roll(xb, shifts=shift, dims=(2, 3))
        if prepare is not None:
            xb = prepare(xb, gen)
        loss = F.cross_entropy(net.logits(xb.to(device)), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net


def seeded_init(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with torch's CPU generator seeded with ``seed`` in a fork of the global random state: the
    weights are those of ``torch.manual_seed(seed); build()`` (initialisation draws on the CPU), and the
    caller's random state (CPU and CUDA) is left untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        return build()


def _cache_key(data: DataSplits, recipe: str) -> str:
    return hashlib.sha256(f"{data.data_hash}:{recipe}".encode()).hexdigest()[:20]


class ClassifierExtractor(FeatureExtractor):
    """128-d penultimate features of a CNN fitted to the data set's labels (random-cnn without labels)."""

    name = "classifier"
    description = "128-d features of a CNN trained on the data set's own labels (cached per data set); native size"

    @classmethod
    def load(cls, data: DataSplits | None, cache_dir: Path, device: torch.device, **options: Any) -> FeatureExtractor:
        if data is None:
            raise ValueError(f"the {cls.name!r} extractor is fitted to a data set; name one (e.g. --dataset digits) "
                             "or use --extractor inception")
        name = cls.name
        if name == "classifier" and not data.has_labels:
            name = "random-cnn"
        if name == "random-cnn":
            return _load_random_cnn(cls, data, cache_dir, device)
        recipe = f"{RECIPE_VERSION}:{name}"
        key = _cache_key(data, recipe)
        path = Path(cache_dir) / "extractors" / f"{name}-{key}.pt"
        classes = int(data.num_classes or 10)
        accuracy: float | None = None
        blob = load_verified(path)  # None when absent, or damaged (then moved aside and fitted again)
        if blob is not None:
            net = seeded_init(lambda: ClassifierNet(data.spec.channels, classes, data.spec.height), 0)
            net.load_state_dict(blob["state"])  # the cached weights replace the initial ones
            accuracy = blob["accuracy"]
            net = net.to(device).eval()
        else:
            net = train_classifier(data, device)
            with torch.no_grad():
                test = data.unit("test")
                pred = torch.cat([net.logits(test[i : i + 1000].to(device)).argmax(-1).cpu() for i in range(0, len(test), 1000)])
            accuracy = float((pred == data.test_labels).float().mean())
            save_verified(path, {"state": {k: v.cpu() for k, v in net.state_dict().items()}, "accuracy": accuracy})
            atomic_write_json(path.with_suffix(".json"), {"accuracy": accuracy, "recipe": recipe})
        resize = f"none (native {data.spec.height}x{data.spec.width}, values k/(K-1) in [0,1])"
        return cls(net, weights_sha256(net), FEATURES, resize, name=name, accuracy=accuracy,
                   details={"recipe": recipe, "extractor_data": data.split_id})

    @torch.no_grad()
    def probabilities(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Class probabilities (only meaningful for a trained classifier)."""
        dev = self.device
        return torch.cat(
            [F.softmax(self.module.logits(x[i : i + batch_size].to(dev)), -1).cpu() for i in range(0, len(x), batch_size)]
        )


def _load_random_cnn(cls: type[ClassifierExtractor], data: DataSplits, cache_dir: Path,
                     device: torch.device) -> FeatureExtractor:
    """The classifier's network at its seed-0 initialisation, whitened on the training split's features
    (whitening.py); the whitening is fitted once per data set and cached beside the classifiers."""
    recipe = f"{RANDOM_RECIPE_VERSION}:random-cnn:zca-ridge{RIDGE:g}"
    path = Path(cache_dir) / "extractors" / f"random-cnn-{_cache_key(data, recipe)}.pt"
    classes = int(data.num_classes or 10)
    net = Whitened(seeded_init(lambda: ClassifierNet(data.spec.channels, classes, data.spec.height), 0), FEATURES)
    blob = load_verified(path)  # None when absent, or damaged (then moved aside and fitted again)
    if blob is not None:
        net.load_state_dict(blob["state"])
        n_fit = int(blob["n"])
    else:
        body = net.net.to(device).eval()
        with torch.inference_mode():
            train = data.unit("train")
            feats = torch.cat([body(train[i : i + 1000].to(device)).cpu() for i in range(0, len(train), 1000)])
        whitening = fit_whitening(feats, RIDGE)
        net.set(whitening)
        n_fit = whitening.n
        save_verified(path, {"state": {k: v.cpu() for k, v in net.state_dict().items()}, "n": n_fit})
        atomic_write_json(path.with_suffix(".json"), {"recipe": recipe, "whitening_n": n_fit})
    net = net.to(device).eval()
    resize = f"none (native {data.spec.height}x{data.spec.width}, values k/(K-1) in [0,1])"
    return cls(net, weights_sha256(net), FEATURES, resize, name="random-cnn", details={
        "recipe": recipe, "extractor_data": data.split_id, "whitening": "ZCA on the train split's features",
        "whitening_ridge": RIDGE, "whitening_n": n_fit})


class RandomCNNExtractor(ClassifierExtractor):
    """The classifier's network at a fixed random initialisation (no labels needed)."""

    name = "random-cnn"
    description = ("the classifier's CNN at a fixed random initialisation (seed 0), 128-d features ZCA-whitened on the "
                   "training split; native size, no training")


def builtin_extractors() -> list[type[FeatureExtractor]]:
    from genbench.metrics.inception import InceptionExtractor

    return [ClassifierExtractor, RandomCNNExtractor, InceptionExtractor]


def get_extractor(name: str, data: DataSplits | None, cache_dir: Path, device: torch.device, registry: Registry,
                  **options: Any) -> FeatureExtractor:
    """Load the feature extractor registered as ``name`` in ``registry`` (for ``data`` where it depends on it)."""
    cls = registry.extractors.get(name)  # UnknownNameError with did-you-mean
    return cls.load(data, Path(cache_dir), torch.device(device), **options)
