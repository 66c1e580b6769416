"""diffusers' UNet2DModel and schedulers as a genbench GenerativeModel.

Training is Algorithm 1 of Ho et al. 2020: t ~ U{0..T-1}, eps ~ N(0, I), x_t = ``add_noise(x_0, eps, t)`` of a
DDPMScheduler with the config's noise schedule (sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps), and a gradient step
(Adam) on ||target - f_theta(x_t, t)||^2 with target eps (L_simple, eq. 14; or v / x_0 for a folder saved with
that ``prediction_type``), then the EMA of ``genbench.nn.ema`` into ``averaged["ema"]``, which samples.
Images k/(K-1) in [0, 1] are mapped to [-1, 1] (section 3.3) and padded to the U-Net's canvas (network.py).

Sampling runs diffusers' pipeline loop with the scheduler the config names (schedulers.py); ``sample_steps``
sets its step count (None: T steps) and ``nfe(steps)`` is the number of U-Net calls that loop makes.  The
initial noise is drawn on the CPU from the sampling generator, every stochastic step's noise too (the generator
goes to ``scheduler.step``, which draws on its device), and the loop runs under a forked global RNG seeded from
the same generator, so a scheduler that draws from the global RNG is deterministic as well.

No likelihood is claimed (``likelihood = None``): the variational bound (Ho et al. eq. 5) is exact to compute
only for DDPM's own Markov chain -- the posterior variance fixed, every step a Gaussian -- and needs a
discretised decoder L_0 = -log p(x_0 | x_1) over the K levels at t = 0.  diffusers' schedulers are samplers,
not a reverse-process density: DDIM, DPM-Solver, UniPC and Euler are deterministic ODE solvers (no density at
all), and not even DDPMScheduler provides L_0 for discrete data.  The built-in ``ddpm`` model gives the VLB.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig
from genbench.config import ConfigError
from genbench.nn.ema import averaged_copy, ema_decay, ema_update
from genbench.nn.lr import warmup_cosine_lr
from genbench.nn.optim import optimiser_step

from . import network, pretrained, schedulers

PREDICTIONS = ("epsilon", "v_prediction", "sample")


@dataclass
class DiffusersConfig(ModelConfig):
    """Defaults: Ho et al.'s CIFAR-10 U-Net (diffusers' google/ddpm-cifar10-32), T = 1000 linear betas."""

    scheduler: str = "ddpm"  # an alias of schedulers.ALIASES or a diffusers scheduler class name
    eta: float = 0.0  # DDIM's eta (schedulers whose step() takes one)
    timestep_spacing: str | None = None  # "linspace" | "leading" | "trailing"; None: the scheduler's own
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"  # diffusers': linear | scaled_linear | squaredcos_cap_v2 (cosine) | sigmoid
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "epsilon"  # what the network predicts: epsilon | v_prediction | sample
    clip_sample: bool = True  # DDPM/DDIM clamp the predicted x_0 to [-1, 1]
    block_out_channels: list[int] = field(default_factory=lambda: [128, 256, 256, 256])
    layers_per_block: int = 2
    attention_levels: list[int] = field(default_factory=lambda: [1])  # levels with attention (0 = full size)
    attention_head_dim: int | None = None  # None: one head at the narrowest attention level
    norm_num_groups: int = 32
    dropout: float = 0.1
    lr: float = 2e-4
    warmup_steps: int = 5000
    lr_decay: bool = False  # cosine decay of the learning rate to 10% over max_steps
    grad_clip: float = 1.0
    ema_decay: float = 0.9999  # 0: no EMA, sample with the trained weights
    ema_warmup: bool = True
    pretrained: str | None = None  # a local pipeline or UNet2DModel folder (no network access)
    pretrained_sha256: str | None = None  # filled in from the folder's files: the run id follows its content
    batch_size: int = 128
    max_steps: int | None = 800_000
    sample_steps: list[int | None] = field(default_factory=lambda: [None])

    def __post_init__(self) -> None:
        """Every check that needs no data, while the config is resolved (before a run folder exists)."""
        schedulers.diffusers_module()
        schedulers.scheduler_kind(self.scheduler)
        if self.prediction_type not in PREDICTIONS:
            raise ConfigError(f"diffusers: prediction_type must be one of {', '.join(PREDICTIONS)}, "
                              f"got {self.prediction_type!r}")
        if self.timestep_spacing not in (None, "linspace", "leading", "trailing"):
            raise ConfigError(f"diffusers: timestep_spacing must be linspace, leading, trailing or none, "
                              f"got {self.timestep_spacing!r}")
        for steps in self.sample_steps:
            if steps is not None and steps < 1:
                raise ConfigError(f"diffusers: sample_steps must be positive step counts or none, got {steps}")
        if self.pretrained is not None:
            folder = pretrained.locate(self.pretrained)
            pretrained.check(folder)
            self.pretrained = str(folder.root)
            self.pretrained_sha256 = pretrained.fingerprint(folder)
        else:
            self._check_network()
        noise = noise_config(self)
        if noise["prediction_type"] not in PREDICTIONS:
            raise ConfigError(f"diffusers: the scheduler config in {self.pretrained} predicts "
                              f"{noise['prediction_type']!r}; the adapter trains {', '.join(PREDICTIONS)}")
        for steps in dict.fromkeys(self.sample_steps):
            schedulers.check_steps(schedulers.scheduler_kind(self.scheduler), noise, sampler_options(self),
                                   steps_of(steps, int(noise["num_train_timesteps"])))

    def _check_network(self) -> None:
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise ConfigError(f"diffusers: norm_num_groups={self.norm_num_groups} must divide every block width, "
                              f"not {bad}; set norm_num_groups to a divisor of {list(self.block_out_channels)}")
        levels = len(self.block_out_channels)
        if any(not 0 <= i < levels for i in self.attention_levels):
            raise ConfigError(f"diffusers: attention_levels {list(self.attention_levels)} must lie in 0..{levels - 1}")


def noise_config(c: DiffusersConfig) -> dict[str, Any]:
    """The noise schedule and prediction type: the config's, or those a pretrained folder was saved with."""
    noise = {"num_train_timesteps": c.num_train_timesteps, "beta_schedule": c.beta_schedule,
             "beta_start": c.beta_start, "beta_end": c.beta_end, "prediction_type": c.prediction_type,
             "clip_sample": c.clip_sample}
    if c.pretrained is not None:
        noise.update(pretrained.scheduler_values(pretrained.locate(c.pretrained)))
    return noise


def sampler_options(c: DiffusersConfig) -> dict[str, Any]:
    """Sampling-only scheduler options the config sets on top of the noise schedule."""
    return {} if c.timestep_spacing is None else {"timestep_spacing": c.timestep_spacing}


def steps_of(steps: int | None, T: int) -> int:
    """The scheduler's step count for a sampler setting: ``steps`` (at most T), or T for None."""
    if steps is None:
        return T
    if steps < 1:
        raise ValueError(f"diffusers: steps must be at least 1, got {steps}")
    return min(int(steps), T)


class DiffusersModel(GenerativeModel):
    """A diffusers UNet2DModel trained with L_simple and sampled with any diffusers scheduler."""

    name = "diffusers"
    description = "diffusers UNet2DModel + any diffusers scheduler (DDPM, DDIM, DPM-Solver++, UniPC, Euler, ...)"
    Config = DiffusersConfig
    likelihood = None  # why: see the module docstring
    supports_steps = True
    presets: dict[str, dict[str, Any]] = {
        "tiny": {
            "block_out_channels": [8, 16], "layers_per_block": 1, "attention_levels": [], "norm_num_groups": 4,
            "attention_head_dim": 8, "dropout": 0.0, "num_train_timesteps": 20, "beta_schedule": "squaredcos_cap_v2",
            "lr": 1e-3, "warmup_steps": 0, "ema_decay": 0.9, "batch_size": 16, "max_steps": 5, "eval_every": 5,
            "n_samples": 16, "sample_batch_size": 16, "sample_steps": [None, 5],
        },
        # the built-in ddpm's quick/standard U-Net (0.70M parameters on digits: widths 32/64, one block per level,
        # attention at the lower level and in the middle) and its recipe; DPM-Solver++ for samples
        "quick": {
            "scheduler": "dpm-solver++", "block_out_channels": [32, 64], "layers_per_block": 1,
            "attention_levels": [1], "norm_num_groups": 32, "dropout": 0.0, "num_train_timesteps": 1000,
            "beta_schedule": "squaredcos_cap_v2", "lr": 2e-3, "warmup_steps": 100, "lr_decay": True,
            "ema_decay": 0.995, "batch_size": 128, "max_steps": 2000, "max_minutes": 4.5, "eval_every": 500,
            "n_samples": 1000, "sample_batch_size": 500, "sample_steps": [10, 20],
        },
        "standard": {
            "scheduler": "dpm-solver++", "block_out_channels": [32, 64], "layers_per_block": 1,
            "attention_levels": [1], "norm_num_groups": 32, "dropout": 0.0, "num_train_timesteps": 1000,
            "beta_schedule": "squaredcos_cap_v2", "lr": 2e-3, "warmup_steps": 100, "lr_decay": True,
            "ema_decay": 0.999, "batch_size": 128, "max_steps": 5000, "max_minutes": 20.0, "eval_every": 1000,
            "n_samples": 1000, "sample_batch_size": 500, "sample_steps": [10, 20, 50],
        },
    }

    def __init__(self, config: DiffusersConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        c = config
        self.kind = schedulers.scheduler_kind(c.scheduler)
        if c.pretrained is not None:
            folder = pretrained.locate(c.pretrained)
            unet = pretrained.load_unet(folder)
            network.check_pretrained(unet, data, str(folder.root))
        else:
            unet = network.build_unet(c, data)
        self.size = network.canvas(data.height, data.width, network.levels_of(unet))
        self.noise_config = noise_config(c)  # a pretrained folder's: the schedule its weights were trained with
        self.train_scheduler = schedulers.build_scheduler(schedulers.ALIASES["ddpm"], self.noise_config)
        self.T = int(self.train_scheduler.config.num_train_timesteps)
        unet = unet.to(self.device)
        self.networks = {"unet": unet}
        if c.ema_decay > 0:
            self.averaged = {"ema": averaged_copy(unet)}
        # foreach: one fused update over all tensors (bit-identical to the per-tensor loop, ~30% faster on a CPU)
        self.optimizers = {"opt": torch.optim.Adam(unet.parameters(), lr=c.lr, foreach=True)}

    # ------------------------------------------------------------------ helpers
    @property
    def unet(self):
        return self.networks["unet"]

    @property
    def sampling_net(self):
        """The EMA weights if there are any (Ho et al. sample with the EMA), else the trained ones."""
        return self.averaged.get("ema", self.unet)

    def sampling_scheduler(self):
        """A fresh scheduler of the configured kind on the training noise schedule (schedulers keep state)."""
        return schedulers.build_scheduler(self.kind, self.noise_config, sampler_options(self.config))

    def to_model_space(self, x: Tensor) -> Tensor:
        """k/(K-1) in [0, 1] -> [-1, 1] on the U-Net's canvas."""
        return network.pad(x.to(self.device) * 2 - 1, self.size)

    def lr_at(self, step: int) -> float:
        c = self.config
        return warmup_cosine_lr(c.lr, step, c.warmup_steps, c.max_steps if c.lr_decay and c.max_steps else None)

    # ------------------------------------------------------------------ training
    def train_step(self, x: Tensor) -> dict[str, float]:
        """Algorithm 1 (Ho et al. 2020) with the scheduler's ``add_noise``; then the EMA update."""
        c, sched = self.config, self.train_scheduler
        x0 = self.to_model_space(x)
        t = torch.randint(0, self.T, (len(x0),), device=self.device)
        eps = torch.randn_like(x0)
        xt = sched.add_noise(x0, eps, t)
        kind = sched.config.prediction_type
        target = eps if kind == "epsilon" else sched.get_velocity(x0, eps, t) if kind == "v_prediction" else x0
        loss = F.mse_loss(self.unet(xt, t).sample, target)
        # backward, clipping, step (loss-scaled in fp16 runs): genbench.nn.optim
        _, gnorm = optimiser_step(self.optimizers["opt"], loss, self.unet.parameters(), grad_clip=c.grad_clip,
                                  lr=self.lr_at(self.step))
        if "ema" in self.averaged:
            ema_update(self.averaged["ema"], self.unet, ema_decay(self.step, c.ema_decay, c.ema_warmup))
        return {"loss": float(loss.detach()), "grad_norm": float(gnorm)}

    # ------------------------------------------------------------------ sampling
    def steps_of(self, steps: int | None) -> int:
        return steps_of(steps, self.T)

    def sampler_name(self, steps: int | None) -> str:
        eta = f"(eta={self.config.eta:g})" if self.config.eta and self.kind.class_name == "DDIMScheduler" else ""
        return f"diffusers-{self.kind.label}{eta}-{self.steps_of(steps)}"

    def nfe(self, steps: int | None) -> int:
        """U-Net calls per image: the length of the scheduler's timesteps for that step count (schedulers.py)."""
        return schedulers.evaluations(self.sampling_scheduler(), self.steps_of(steps))

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """x_T ~ N(0, init_noise_sigma^2 I) from ``generator`` on the CPU, the scheduler's loop, crop, [0, 1]."""
        if generator is None:
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        sched = self.sampling_scheduler()
        schedulers.set_timesteps(sched, self.steps_of(steps), self.device)
        shape = (n, self.data.channels, *self.size)
        x = torch.randn(shape, generator=generator).to(self.device) * sched.init_noise_sigma
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda):
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed(seed)
            x = schedulers.denoise(self.sampling_net, sched, x, generator, self.config.eta)
        x = network.crop(x, self.data.height, self.data.width)
        return ((x.float() + 1) / 2).clamp(0, 1)
