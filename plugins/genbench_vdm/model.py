"""The variational diffusion model (Kingma et al. 2021) as a genbench GenerativeModel.

Images k/(K-1) in [0, 1] are mapped to the K-level grid of [-1, 1].  A training step minimises the bound of
eq. 11 in nats per sub-pixel, -log P(x) <= prior + reconstruction + L_inf, on one draw of (t, eps) per image
with low-discrepancy t across the batch (Appendix I.1); the noise model and the schedule's end points follow
the bound's gradient, the schedule's shape the gradient of the squared diffusion loss (Appendix I.2, see
``genbench.diffusion.learned_schedule``).  The exponential moving average of both (``averaged["ema"]``)
samples and scores.

Likelihood: ``nll`` is the bound (an ELBO on -log P(x) of the discrete data) in nats per image: the prior KL at
gamma(1) and the decoder term at gamma(0) exactly, the diffusion term (eq. 17) averaged over ``bound_draws``
low-discrepancy t draws per image from a generator seeded by the batch's content; ``nll_estimates`` the same
with ``test_bound_draws``.  The bound is that of the continuous-time model (T -> infinity); the T-step sampler
draws from its discretisation, whose own bound L_T is larger (Sec. 4.1).

Samples: ancestral sampling on the grid t_i = i/T (eqs. 31-33) from z_1 ~ N(0, I) to z_0, then the decoder's
mode (the level nearest z_0 / alpha_0), not a draw from p(x | z_0).

The quick preset trains and samples in bf16 where the hardware multiplies it natively (``precision`` "auto"; the
bound is always evaluated in fp32): on digits over seeds 0-2 (2026-12-03, ``bench/results/precision_digits.md``)
bf16 held the ELBO (1.8015 vs 1.8016 bits/dim) and the FID (6.8 ± 5.4 vs 7.3 ± 5.8), and the training step is
1.21x faster in bf16 on an AVX512-BF16 EPYC (``bench/results/perf.md``, "FLOPs": fp32 and bf16 steps interleaved).

Recipe of the CPU presets (digits, 8x8): the DDPM presets' 0.7M-parameter U-Net, lr 2e-3 with a 100-step
warm-up and cosine decay, EMA 0.995 (quick) / 0.999 (standard); gamma_min starts at 2 ln(1 / (3 (K - 1)))
(the decoder's noise a third of half a level: -7.7 at K = 17, the paper's -13.3 at K = 256), gamma_max at the
paper's 5.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig, NLLEstimate
from genbench.tasks.delegate import RestorationModule
from genbench.diffusion import MonotoneGamma, UNetConfig, continuous_bound, low_discrepancy_times, lowest_resolution
from genbench.diffusion.continuous import (
    ancestral_sample, decoder_mode, diffusion_loss, prior_kl, q_sample, reconstruction_nll,
)
from genbench.nn.ema import averaged_copy, ema_decay, ema_update
from genbench.nn.lr import warmup_cosine_lr
from genbench.nn.optim import optimiser_step
from genbench.nn.seeding import content_generator

from .network import NoiseModel, VDMNet, fourier_exponents

MAX_LEVELS = 1024  # the decoder enumerates the K levels (a K x K table per evaluation)


def default_gamma_min(levels: int) -> float:
    """2 ln(1 / (3 (K - 1))): the decoder's noise std e^{gamma/2} is a third of half the level spacing; -13.28
    at K = 256, the paper's initial gamma_min."""
    return 2.0 * math.log(1.0 / (3.0 * (levels - 1)))


@dataclass
class VDMConfig(ModelConfig):
    """Defaults follow the paper where it applies (gamma_max 5, schedule network of 1024 features, lr 2e-4,
    EMA 0.9999) on the DDPM U-Net of the shared library; presets shrink them for CPUs."""

    ch: int = 128
    ch_mult: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    num_res_blocks: int = 2
    attn_resolutions: list[int] = field(default_factory=lambda: [16])
    dropout: float = 0.1
    fourier: bool = True  # Fourier features of z at the level spacing (Appendix C)
    gamma_min: float | None = None  # initial gamma(0); None: 2 ln(1 / (3 (K - 1)))
    gamma_max: float = 5.0  # initial gamma(1)
    learn_schedule: bool = True  # False: fixed, linear in log-SNR between gamma_min and gamma_max
    schedule_features: int = 1024  # outputs of l_2 in the monotone network (Appendix H)
    lr: float = 2e-4
    warmup_steps: int = 5000
    lr_decay: bool = False  # cosine decay of the learning rate to 10% over max_steps
    grad_clip: float = 1.0  # on the noise model's gradient (the schedule's is that of a squared loss)
    ema_decay: float = 0.9999  # 0 disables the EMA
    ema_warmup: bool = True
    sample_T: int = 1000  # ancestral steps of the default sampler (sample(steps=None))
    bound_draws: int = 16  # low-discrepancy t draws per image in nll() (validation)
    test_bound_draws: int = 128  # ... in nll_estimates() (the reported bits/dim)
    batch_size: int = 128
    max_steps: int | None = 800_000
    sample_steps: list[int | None] = field(default_factory=lambda: [None])


_CPU_NET = {"ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}


class VDM(RestorationModule, GenerativeModel):
    """Variational diffusion model (Kingma et al. 2021): learned noise schedule, continuous-time ELBO."""

    name = "vdm"
    description = "VDM (Kingma et al. 2021): learned monotone noise schedule, continuous-time ELBO, ancestral sampling"
    Config = VDMConfig
    likelihood = "ELBO"
    supports_steps = True
    capabilities = frozenset({"complete", "denoise", "colourise"})  # genbench.tasks, in completion.py
    restoration_module = "genbench_vdm.completion"
    compiled_sampling_modules = ("ema.eps", "net.eps")  # the noise model the sampler calls (compile_sampler)
    presets: dict[str, dict[str, Any]] = {
        "tiny": {
            "ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
            "schedule_features": 16, "lr": 1e-3, "warmup_steps": 0, "ema_decay": 0.9, "batch_size": 16,
            "max_steps": 5, "eval_every": 5, "n_samples": 16, "sample_batch_size": 16, "sample_T": 20,
            "sample_steps": [None, 5], "bound_draws": 4, "test_bound_draws": 4,
        },
        "quick": {
            **_CPU_NET, "lr": 2e-3, "warmup_steps": 100, "lr_decay": True, "ema_decay": 0.995, "batch_size": 128,
            "max_steps": 2000, "max_minutes": 4.5, "eval_every": 500, "n_samples": 1000, "sample_batch_size": 500,
            "sample_T": 1000, "sample_steps": [100], "bound_draws": 16, "test_bound_draws": 64, "precision": "auto",
        },
        "standard": {
            **_CPU_NET, "lr": 2e-3, "warmup_steps": 100, "lr_decay": True, "ema_decay": 0.999, "batch_size": 128,
            "max_steps": 5000, "max_minutes": 20.0, "eval_every": 1000, "n_samples": 1000,
            "sample_batch_size": 500, "sample_T": 1000, "sample_steps": [None, 100], "bound_draws": 16,
            "test_bound_draws": 128,
        },
    }

    #: per-preset overrides for large images (``genbench.model.large_images``), as the DDPM's: quick draws 20 t per
    #: test image (3,000 images, ``LIKELIHOOD_IMAGE_CAPS``); standard fits the shared 20-minute bf16 budget: 472 ms
    #: per step at 28x28 on 2 cores, validation included (seed 0 of the Fashion grid: 1,800 steps in 850 s, which
    #: left 350 s of the budget unspent), so 2,400 steps, the cosine decay ending with the budget; samples with 100
    #: ancestral steps only (1000 cost 2.4 s per image), validates every 800 steps on 16 draws and bounds the test
    #: images with 32.
    large_presets: dict[str, dict[str, Any]] = {
        "quick": {"test_bound_draws": 20},
        "standard": {"max_steps": 2400, "eval_every": 800, "ema_decay": 0.995, "sample_steps": [100],
                     "bound_draws": 16, "test_bound_draws": 32},
    }

    @classmethod
    def preset_overrides(cls, preset: str, data: DataSpec) -> dict[str, Any]:
        """The preset, with attention at the lowest resolution the U-Net reaches on this data for "quick" and
        "standard" (8x8 -> 4, 28x28 -> 14, 32x32 -> 16 with two levels), as the DDPM presets; on large images
        :attr:`large_presets` on top."""
        values = super().preset_overrides(preset, data)
        if preset in ("quick", "standard"):
            values["attn_resolutions"] = [lowest_resolution(data.height, data.width, len(values["ch_mult"]))]
        return values

    def __init__(self, config: VDMConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        c = config
        if data.levels > MAX_LEVELS:
            raise ValueError(f"vdm's decoder enumerates the data's levels; K = {data.levels} is more than "
                             f"{MAX_LEVELS}: quantise the data to fewer levels")
        for key in ("sample_T", "bound_draws", "test_bound_draws"):
            if getattr(c, key) < 1:
                raise ValueError(f"vdm needs {key} >= 1, got {getattr(c, key)}")
        g_min = default_gamma_min(data.levels) if c.gamma_min is None else float(c.gamma_min)
        if not c.gamma_max > g_min:
            raise ValueError(f"vdm needs gamma_max > gamma_min, got gamma_max={c.gamma_max}, gamma_min={g_min}: "
                             "raise gamma_max or lower gamma_min")
        unet_cfg = UNetConfig(
            in_channels=data.channels, ch=c.ch, ch_mult=tuple(c.ch_mult), num_res_blocks=c.num_res_blocks,
            attn_resolutions=tuple(c.attn_resolutions), dropout=c.dropout,
        )
        exps = fourier_exponents(data.levels) if c.fourier else ()
        eps = NoiseModel(unet_cfg, (data.height, data.width), (g_min, c.gamma_max), exps)
        schedule = MonotoneGamma(g_min, c.gamma_max, c.schedule_features, learned=c.learn_schedule)
        net = VDMNet(eps, schedule).to(self.device)
        self.networks = {"net": net}
        if c.ema_decay > 0:
            self.averaged = {"ema": averaged_copy(net)}
        # foreach: one fused update over all tensors (bit-identical to the per-tensor loop, ~30% faster on a CPU)
        self.optimizers = {"opt": torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=c.lr,
                                                   foreach=True)}

    # ------------------------------------------------------------------ helpers
    @property
    def net(self) -> VDMNet:
        return self.networks["net"]  # type: ignore[return-value]

    @property
    def sampling_net(self) -> VDMNet:
        """The EMA of noise model and schedule if there is one, else the trained pair."""
        return self.averaged.get("ema", self.net)  # type: ignore[return-value]

    def lr_at(self, step: int) -> float:
        c = self.config
        return warmup_cosine_lr(c.lr, step, c.warmup_steps, c.max_steps if c.lr_decay and c.max_steps else None)

    def endpoints(self) -> tuple[float, float]:
        """(gamma(0), gamma(1)) of the sampling schedule."""
        g0, g1 = self.sampling_net.schedule.endpoints()
        return float(g0.detach()), float(g1.detach())

    # ------------------------------------------------------------------ training
    def losses(self, x: Tensor) -> dict[str, Tensor]:
        """The per-image terms of eq. 11 on one (t, eps) per image, t low-discrepancy over the batch (global
        RNG), with the schedule's shape routed to the squared diffusion loss (Appendix I.2)."""
        net, K = self.net, self.data.levels
        x0 = x.to(self.device) * 2 - 1
        draw = net.schedule.draw(low_discrepancy_times(len(x0), device=self.device, dtype=x0.dtype))
        g0, g1 = net.schedule.endpoints()
        eps = torch.randn_like(x0)
        diffusion = diffusion_loss(eps, net.eps(q_sample(x0, draw.gamma, eps), draw.gamma), draw.dgamma)
        if self.config.learn_schedule:
            draw.minimise_variance_of(diffusion)
        prior = prior_kl(x0, g1).flatten(1).sum(1)
        recon = reconstruction_nll(x0, g0, K).to(x0.dtype)
        return {"prior": prior, "recon": recon, "diffusion": diffusion, "bound": prior + recon + diffusion}

    def train_step(self, x: Tensor) -> dict[str, float]:
        """One Adam step on the bound in nats per sub-pixel (eq. 11 with eq. 17), then the EMA update."""
        c, net, opt = self.config, self.net, self.optimizers["opt"]
        terms = self.losses(x)
        per_dim = 1.0 / self.data.dims
        # backward, clipping of the noise model's gradient, step (loss-scaled in fp16 runs): genbench.nn.optim
        _, gnorm = optimiser_step(opt, terms["bound"].mean() * per_dim, net.eps.parameters(), grad_clip=c.grad_clip,
                                  lr=self.lr_at(self.step))
        if "ema" in self.averaged:
            ema_update(self.averaged["ema"], net, ema_decay(self.step, c.ema_decay, c.ema_warmup))
        bpd = 1.0 / (self.data.dims * math.log(2.0))
        g0, g1 = (float(g.detach()) for g in net.schedule.endpoints())
        out = {k: float(v.detach().mean()) * bpd for k, v in terms.items() if k != "bound"}
        return {"loss": float(terms["bound"].detach().mean()) * bpd, **out, "gamma_0": g0,
                "gamma_1": g1, "grad_norm": float(gnorm)}

    # ------------------------------------------------------------------ sampling
    def _steps(self, steps: int | None) -> int:
        return self.config.sample_T if steps is None else int(steps)

    def sampler_name(self, steps: int | None) -> str:
        return f"ancestral-{self._steps(steps)}"

    def nfe(self, steps: int | None) -> int:
        """One noise-model evaluation per ancestral step."""
        return self._steps(steps)

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Ancestral sampling with ``steps`` (default ``sample_T``) steps (eq. 33), then the decoder's mode."""
        net = self.sampling_net
        z0, g0 = ancestral_sample(net.eps, net.schedule.gamma, (n, *self.data.shape), self._steps(steps),
                                  generator=generator, device=self.device)
        return ((decoder_mode(z0, g0, self.data.levels) + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ likelihood
    def _bound(self, x: Tensor, draws: int) -> Tensor:
        net = self.sampling_net
        terms = continuous_bound(net.eps, net.schedule, x.to(self.device) * 2 - 1, self.data.levels, draws,
                                 generator=content_generator(x))
        return (terms["prior"] + terms["recon"] + terms["diffusion"]).to(torch.float32)

    def nll(self, x: Tensor) -> Tensor:
        """The negative ELBO (eq. 11) in nats per image, ``bound_draws`` low-discrepancy t draws per image."""
        return self._bound(x, self.config.bound_draws)

    def nll_estimates(self, x: Tensor) -> list[NLLEstimate]:
        """The same bound with ``test_bound_draws`` t draws per image for the reported bits/dim."""
        m = self.config.test_bound_draws
        g0, g1 = self.endpoints()
        return [NLLEstimate("ELBO", self._bound(x, m), params={
            "estimator": "continuous-time, low-discrepancy t", "t_draws": m, "gamma_min": round(g0, 4),
            "gamma_max": round(g1, 4)})]
