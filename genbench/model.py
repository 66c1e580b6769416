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
import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genbench.nn.compiled import FrozenCompiled

#: what config.json and ``genbench run`` say about a model that declares no presets
NO_PRESETS_NOTE = "preset not defined by the plugin: Config defaults"

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
    ``sampling_seeds`` draws every sampler setting with that many independent
    generators (rows carry ``sampling_seed`` 0, 1, ...; draw 0 is the one a single
    seed gives); ``sample_every`` (steps) draws ``n_samples`` per sampler setting
    during training and records FID, KID and precision/recall/density/coverage in
    the run's curves (None: only after training).  ``precision`` ("fp32", "bf16", "fp16" or "auto") is the dtype
    of the training step and the sampler's network calls (``genbench.runner.precision``; likelihoods are always
    evaluated in fp32; fp16 scales the loss, CUDA only); the runner stores the resolved value, and an fp32
    config hashes as before the field existed (``to_dict`` leaves it out), so earlier run ids stay valid.
    ``compile_sampler`` ("off", "on" or "auto") runs the sampler's network calls through a frozen compiled copy
    (``genbench.nn.compiled``) for the families that name their sampling network in ``compiled_sampling_modules``;
    "auto" does so when the planned network evaluations reach
    ``genbench.runner.compiled_sampling.COMPILE_MIN_EVALUATIONS``; "off" (the default) hashes as before the field
    existed.
    ``nll_val_images`` / ``nll_test_images``: the likelihood (checkpoint selection / reported bits/dim) is
    evaluated on the first that many images of the validation / test split (None: all of it; rows record n).
    The quick and standard presets cap them on large images (``genbench.config.LIKELIHOOD_IMAGE_CAPS``), the same
    for every family so that their rows share n; unset, they hash as before the fields existed.
    """

    batch_size: int = 64
    max_steps: int | None = 1000
    max_minutes: float | None = None
    eval_every: int = 250
    n_samples: int = 1000
    sample_batch_size: int = 500
    sample_steps: list[int | None] = field(default_factory=lambda: [None])
    sampling_seeds: int = 1
    sample_every: int | None = None
    precision: str = "fp32"
    compile_sampler: str = "off"
    nll_val_images: int | None = None
    nll_test_images: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out.get("precision") == "fp32":
            del out["precision"]
        if out.get("compile_sampler") == "off":  # as before the field existed: earlier run ids stay valid
            del out["compile_sampler"]
        for key in ("nll_val_images", "nll_test_images"):  # unset: the whole split, as before the fields existed
            if key in out and out[key] is None:
                del out[key]
        return out


@dataclass(frozen=True)
class NLLEstimate:
    """A per-image negative log-likelihood (nats) of the discrete data, and what it is.

    ``kind`` is the family of the figure ("exact", "ELBO", "IWAE", "VLB", ...) and
    ``label`` its name in tables, given by the plugin (e.g. kind "IWAE", label
    "IWAE-100"); it defaults to ``kind``.  ``nats`` has shape (B,); it may be an
    unbiased stochastic estimate, in which case the runner's standard error over
    images covers that noise too.
    """

    kind: str
    nats: Tensor
    label: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label is None:
            object.__setattr__(self, "label", self.kind)


#: images above this many sub-pixels (16x16 grey) are "large": presets differ there (``large_presets``), and the
#: quick / standard presets cap the likelihood's images (``genbench.config.LIKELIHOOD_IMAGE_CAPS``)
LARGE_IMAGE_DIMS = 256


def large_images(data: DataSpec) -> bool:
    """Whether the presets treat ``data`` as large (more than :data:`LARGE_IMAGE_DIMS` sub-pixels)."""
    return data.dims > LARGE_IMAGE_DIMS


class GenerativeModel(abc.ABC):
    """A generative model as the benchmark sees it (see ARCHITECTURE.md, "Adding a model").

    Class attributes a plugin sets:
      name            the registry name (``genbench run --models NAME``)
      Config          its config dataclass (a ModelConfig subclass)
      presets         {"tiny"|"quick"|"standard"|...: {field: value}} overrides of Config;
                      "tiny" is what the contract test and unit tests use; no presets at all:
                      the Config defaults under every preset name
      likelihood      the kind of the primary ``nll`` ("exact", "ELBO", "VLB", ...), or
                      None when the model has no ``nll``
      role            "model", or "baseline" for reference points such as the per-pixel model
      supports_steps  whether ``sample(steps=...)`` changes the number of network evaluations

    Subclasses put their trained networks in ``self.networks``, weight-averaged copies
    (EMA, SWA) in ``self.averaged`` and optimisers in ``self.optimizers`` so the default
    ``state_dict`` covers them; ``self.step`` counts training steps.  Averaged copies
    are checkpointed, not counted by ``count_parameters`` and always in eval mode.
    ``nfe(steps)`` is the number of network evaluations per image of
    ``sample(n, steps=steps)``; ``sampler_name(steps)`` names that setting in tables.
    """

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: preset -> overrides on top of ``presets[preset]`` for large images (:func:`large_images`: 28x28, 32x32)
    large_presets: ClassVar[dict[str, dict[str, Any]]] = {}
    likelihood: ClassVar[str | None] = None
    role: ClassVar[str] = "model"
    supports_steps: ClassVar[bool] = False
    description: ClassVar[str] = ""
    #: optional restoration tasks the model implements (``genbench.tasks``): "complete" means
    #: ``complete(x, known_mask, *, generator)`` and "denoise" ``denoise(x, sigma, *, generator)``, both returning
    #: images in [0, 1]; task rows say "not supported" for a model without the capability (see ``supports``)
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: the network the sampler calls, as keys of ``averaged`` / ``networks`` (or dotted paths into them, e.g.
    #: "ema.eps") tried in order, the first present being it (e.g. ("ema", "net")): ``compiled_sampling`` swaps in a
    #: frozen compiled copy of it (config field ``compile_sampler``).  Empty: the family does not support it
    #: (``compile_sampler = "on"`` is refused).
    compiled_sampling_modules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ModelConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        self.config = config
        self.data = data
        self.device = torch.device(device)
        self.networks: dict[str, nn.Module] = {}
        self.averaged: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.step = 0

    @classmethod
    def likelihood_is_exact(cls) -> bool:
        """Whether the primary ``nll`` is the exact -log P(x) (not a bound)."""
        return cls.likelihood == "exact"

    # --- presets -----------------------------------------------------------------
    @classmethod
    def preset_overrides(cls, preset: str, data: DataSpec) -> dict[str, Any]:
        """Config overrides for ``preset`` on data of this spec: ``presets[preset]``, with
        ``large_presets[preset]`` on top for large images (override to vary by data further).

        A model that declares no presets at all runs on its Config defaults under any preset name
        (:data:`NO_PRESETS_NOTE`); a model with presets refuses a name it does not define (KeyError).
        """
        if not cls.presets:
            return {}
        if preset not in cls.presets:
            raise KeyError(preset)
        values = dict(cls.presets[preset])
        if large_images(data):
            values.update(cls.large_presets.get(preset, {}))
        return values

    @classmethod
    def preset_note(cls, preset: str) -> str | None:
        """Why ``preset`` did not shape the config, when it did not (recorded in config.json), else None."""
        return NO_PRESETS_NOTE if not cls.presets else None

    # --- the interface -------------------------------------------------------------
    @abc.abstractmethod
    def train_step(self, x: Tensor) -> dict[str, float]:
        """One optimisation step on batch ``x``; returns scalar losses (a "loss" key at least)."""

    @abc.abstractmethod
    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images (n, C, H, W) in [0, 1]; deterministic given ``generator``."""

    def nfe(self, steps: int | None) -> int:
        """Network evaluations each image goes through in ``sample(n, steps=steps)``."""
        return 1

    def sampler_name(self, steps: int | None) -> str:
        """The name of the sampler setting ``steps`` in tables."""
        return "default" if steps is None else f"{steps} steps"

    def nll(self, x: Tensor) -> Tensor:
        """-log P(x) in nats per image of the discrete data (shape (B,)); only if ``likelihood``."""
        raise NotImplementedError(f"model {self.name!r} declares no likelihood")

    def nll_estimates(self, x: Tensor) -> list[NLLEstimate]:
        """Every likelihood figure the model reports for ``x`` (default: the primary ``nll``)."""
        return [NLLEstimate(self.likelihood or "exact", self.nll(x))]

    @contextlib.contextmanager
    def compiled_sampling(self) -> Iterator[FrozenCompiled]:
        """Inside the block the sampler's network (the first of ``compiled_sampling_modules`` found: a key of
        ``averaged`` or ``networks``, or a dotted path into one, e.g. "ema.eps") is a ``FrozenCompiled`` copy,
        compiled at its first call; the original is back afterwards (also on an error).  The copy holds the weights
        of the block's start: no training inside the block."""
        for key in self.compiled_sampling_modules:
            root, _, path = key.partition(".")
            for group in (self.averaged, self.networks):
                if root not in group:
                    continue
                if path:  # a submodule: swapped on its parent module
                    parent_path, _, name = path.rpartition(".")
                    parent = group[root].get_submodule(parent_path) if parent_path else group[root]
                    original = getattr(parent, name)

                    def put(module: nn.Module) -> None:
                        setattr(parent, name, module)
                else:  # a whole network: swapped in its dict
                    original = group[root]

                    def put(module: nn.Module) -> None:
                        group[root] = module
                frozen = FrozenCompiled(original)
                put(frozen)
                try:
                    yield frozen
                finally:
                    put(original)
                return
        raise ValueError(f"model {self.name!r} has no network to compile for sampling "
                         f"(compiled_sampling_modules={self.compiled_sampling_modules!r}); use compile_sampler=off")

    # --- preliminary training stages (optional) -------------------------------------------
    def preliminary_stage(self) -> str | None:
        """The name of the preliminary training stage the model is in now (the LDM's "autoencoder"), or None.

        During such a stage the model's ``nll`` does not yet measure the model that will be sampled, so the runner's
        validation evaluates ``stage_criterion`` instead, records it in the curves as ``val_<name>_bits_per_dim``,
        hands it to ``observe_stage_validation`` (the model's own selection / early stopping of the stage) and never
        selects a checkpoint with it."""
        return None

    def stage_criterion(self, x: Tensor) -> Tensor:
        """The preliminary stage's validation criterion in nats per image (shape (B,)), lower is better."""
        raise NotImplementedError(f"model {self.name!r} has no preliminary training stage")

    def observe_stage_validation(self, bits_per_dim: float, stderr: float) -> None:
        """The runner's validation score of ``stage_criterion`` (mean bits/dim and its standard error)."""

    def completion_unsupported(self, known_mask: Tensor) -> str | None:
        """Why ``complete`` cannot honour ``known_mask`` (one line, e.g. "needs a raster-order prefix"), or None."""
        return None

    def count_parameters(self) -> int:
        """Trainable size: parameters of ``self.networks`` (averaged copies are not counted)."""
        seen: set[int] = set()
        total = 0
        for net in self.networks.values():
            for p in net.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    total += p.numel()
        return total

    def train(self, mode: bool = True) -> None:
        """Networks to ``mode``; averaged copies stay in eval mode."""
        for net in self.networks.values():
            net.train(mode)
        for avg in self.averaged.values():
            avg.eval()

    # --- checkpoints --------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Anything beyond networks/averaged/optimisers/step to checkpoint (tensors, numbers, strings)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{self.name}: unexpected extra state {sorted(state)}")

    def state_dict(self) -> dict[str, Any]:
        """Model + averaged copies + optimiser + step, loadable with ``torch.load(weights_only=True)``."""
        return {
            "networks": {k: net.state_dict() for k, net in self.networks.items()},
            "averaged": {k: avg.state_dict() for k, avg in self.averaged.items()},
            "optimizers": {k: opt.state_dict() for k, opt in self.optimizers.items()},
            "step": int(self.step),
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for group in ("networks", "averaged"):
            mine: dict[str, nn.Module] = getattr(self, group)
            theirs = state.get(group, {})
            differ = set(mine) ^ set(theirs)
            if differ:
                raise ValueError(f"{self.name}: checkpoint {group} differ: {sorted(differ)}")
            for k, module in mine.items():
                module.load_state_dict(theirs[k])
        for k, opt in self.optimizers.items():
            if k in state["optimizers"]:
                opt.load_state_dict(state["optimizers"][k])
        self.step = int(state["step"])
        self.load_extra_state(state.get("extra", {}))


def supports(model: GenerativeModel | type[GenerativeModel], capability: str) -> bool:
    """Whether ``model`` declares the optional ``capability`` ("complete", "denoise") and has the method."""
    return capability in getattr(model, "capabilities", ()) and callable(getattr(model, capability, None))
