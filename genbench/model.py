"""The model interface every generative-model plugin implements.

The core owns the training loop, seeding, timing, checkpoints, quantisation of
samples to the data's discrete levels and unit conversion.  A model owns its
networks, optimisers and the maths of its family.

Data convention: a batch ``x`` handed to a model is a float tensor of shape
(B, C, H, W) with values ``k / (K - 1)`` for integer levels ``k`` in
``0..K-1`` (``DataSpec.levels == K``).  ``sample`` returns floats in [0, 1];
the core maps them to levels exactly once with :meth:`DataSpec.quantise`.
Likelihoods are always of the discrete data: ``nll`` returns nats per image,
``-log P(x)`` with ``P`` a probability mass over the K**D possible images.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

LikelihoodCapability = Literal["exact", "bound"]


@dataclass(frozen=True)
class DataSpec:
    """Shape and discreteness of a data set: images are (channels, height, width), K levels each."""

    channels: int
    height: int
    width: int
    levels: int

    def __post_init__(self) -> None:
        if min(self.channels, self.height, self.width) < 1:
            raise ValueError(f"DataSpec needs positive sizes, got {self.shape}")
        if self.levels < 2:
            raise ValueError(f"DataSpec needs at least 2 levels, got {self.levels}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def dims(self) -> int:
        """D, the number of sub-pixels per image (the denominator of bits/dim)."""
        return self.channels * self.height * self.width

    def to_unit(self, levels: Tensor) -> Tensor:
        """Integer levels 0..K-1 (any integer dtype) -> float32 values k/(K-1) in [0, 1]."""
        return levels.to(torch.float32) / (self.levels - 1)

    def to_levels(self, x: Tensor) -> Tensor:
        """Floats in [0, 1] -> nearest integer level as int64 (clamped into 0..K-1)."""
        return torch.round(x.clamp(0.0, 1.0) * (self.levels - 1)).to(torch.int64)

    def quantise(self, x: Tensor) -> Tensor:
        """Samples in [0, 1] -> uint8/int16 level indices; the one place samples are discretised."""
        dtype = torch.uint8 if self.levels <= 256 else torch.int32
        return self.to_levels(torch.nan_to_num(x, nan=0.0)).to(dtype)

    def bits_per_dim(self, nats_per_image: float | Tensor) -> float | Tensor:
        """bits/dim = -log2 P(x) / D = nats / (D ln 2)."""
        return nats_per_image / (self.dims * math.log(2.0))

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class ModelConfig:
    """Fields every model config has: the training budget the core enforces.

    Model plugins subclass this dataclass and add their hyper-parameters with the
    paper's defaults.  ``max_steps``/``max_minutes`` bound training (the first one
    reached stops it); ``eval_every`` is how often (in steps) the runner scores the
    validation split for models with a likelihood, keeping the best checkpoint;
    ``sample_steps`` lists the sampler settings to evaluate (``None`` = the model's
    default sampler; an int = that many steps, for models with ``supports_steps``).
    """

    batch_size: int = 64
    max_steps: int | None = 1000
    max_minutes: float | None = None
    eval_every: int = 250
    n_samples: int = 1000
    sample_batch_size: int = 500
    sample_steps: list[int | None] = field(default_factory=lambda: [None])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class NLLEstimate:
    """A per-image negative log-likelihood (nats) of the discrete data, and what it is.

    ``kind`` is one of "exact", "ELBO", "IWAE" (with ``params={"k": ...}``), "VLB".
    ``nats`` has shape (B,); it may be an unbiased stochastic estimate, in which
    case the runner's standard error over images covers that noise too.
    """

    kind: str
    nats: Tensor
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.kind == "IWAE" and "k" in self.params:
            return f"IWAE-{self.params['k']}"
        return self.kind


class GenerativeModel(abc.ABC):
    """A generative model as the benchmark sees it (see DESIGN.md, "The model interface").

    Class attributes a plugin sets:
      name            the registry name (``genbench run --models NAME``)
      Config          its config dataclass (a ModelConfig subclass)
      presets         {"tiny"|"quick"|"standard"|...: {field: value}} overrides of Config;
                      "tiny" is what the contract test and unit tests use
      likelihood      "exact", "bound" or None (no ``nll``)
      likelihood_kind the kind of the primary ``nll`` ("exact", "ELBO", "VLB", ...)
      supports_steps  whether ``sample(steps=...)`` changes the number of network evaluations

    Subclasses put their networks in ``self.networks`` and optimisers in
    ``self.optimizers`` so the default ``state_dict`` covers them; ``self.step``
    counts training steps.  ``sample`` must set ``self.last_nfe`` to the number of
    network evaluations each image went through.
    """

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    likelihood: ClassVar[LikelihoodCapability | None] = None
    likelihood_kind: ClassVar[str | None] = None
    supports_steps: ClassVar[bool] = False
    description: ClassVar[str] = ""

    def __init__(self, config: ModelConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.data = data
        self.device = torch.device(device)
        self.networks: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.step = 0
        self.last_nfe = 0

    # --- presets -----------------------------------------------------------------
    @classmethod
    def preset_overrides(cls, preset: str, data: DataSpec) -> dict[str, Any]:
        """Config overrides for ``preset`` on data of this spec (override to vary by data)."""
        if preset not in cls.presets:
            raise KeyError(preset)
        return dict(cls.presets[preset])

    # --- the interface -------------------------------------------------------------
    @abc.abstractmethod
    def train_step(self, x: Tensor) -> dict[str, float]:
        """One optimisation step on batch ``x``; returns scalar losses (a "loss" key at least)."""

    @abc.abstractmethod
    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images (n, C, H, W) in [0, 1]; deterministic given ``generator``."""

    def nll(self, x: Tensor) -> Tensor:
        """-log P(x) in nats per image of the discrete data (shape (B,)); only if ``likelihood``."""
        raise NotImplementedError(f"model {self.name!r} declares no likelihood")

    def nll_estimates(self, x: Tensor) -> list[NLLEstimate]:
        """Every likelihood figure the model reports for ``x`` (default: the primary ``nll``)."""
        return [NLLEstimate(self.likelihood_kind or self.likelihood or "exact", self.nll(x))]

    def count_parameters(self) -> int:
        seen: set[int] = set()
        total = 0
        for net in self.networks.values():
            for p in net.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        return total

    def train(self, mode: bool = True) -> None:
        for net in self.networks.values():
            net.train(mode)

    # --- checkpoints --------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Anything beyond networks/optimisers/step to checkpoint (tensors, numbers, strings)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{self.name}: unexpected extra state {sorted(state)}")

    def state_dict(self) -> dict[str, Any]:
        """Model + optimiser + step, loadable with ``torch.load(weights_only=True)``."""
        return {
            "networks": {k: net.state_dict() for k, net in self.networks.items()},
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "step": int(self.step),
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = set(self.networks) ^ set(state["networks"])
        if missing:
            raise ValueError(f"{self.name}: checkpoint networks differ: {sorted(missing)}")
        for k, net in self.networks.items():
            net.load_state_dict(state["networks"][k])
        for k, opt in self.optimizers.items():
            if k in state["optimizers"]:
                opt.load_state_dict(state["optimizers"][k])
        self.step = int(state["step"])
        self.load_extra_state(state.get("extra", {}))


def sampler_label(model: GenerativeModel, steps: int | None) -> str:
    """The name of a sampler setting in tables: the model's own ``sampler_name`` if it has one."""
    namer = getattr(model, "sampler_name", None)
    if callable(namer):
        return str(namer(steps))
    return "default" if steps is None else f"{steps} steps"
