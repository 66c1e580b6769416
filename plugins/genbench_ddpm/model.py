"""DDPM as a genbench GenerativeModel: Algorithm 1 with EMA, Algorithm 2 / DDIM sampling, the VLB in nats.

Images k/(K-1) in [0, 1] are mapped to [-1, 1] (Ho et al. section 3.3).  The exponential moving average
of the weights (``averaged["ema"]``) is what samples and what the bound is computed with.

Recipe of the CPU presets (digits, 8x8): a 0.70M-parameter U-Net (ch 32, two levels, attention at 4x4 and
in the middle), T = 1000 with the cosine schedule (the linear one spends most of its steps on nearly pure
noise at 8x8), lr 2e-3 (10x the paper's: the model is small and the budget is minutes) with a 100-step
warm-up and cosine decay to 10% at ``max_steps`` (the decay, not more steps, is what sharpens samples at
the end of a short run), EMA 0.995 for quick / 0.999 for standard with the (1+n)/(10+n) warm-up so the
average forgets the random start within a few hundred steps, sigma^2 = beta~ (the posterior variance:
on data of known entropy it gives a bound within a few percent of the entropy, sigma^2 = beta is ~20x
looser), and DDIM-50 for the quick preset's samples (1000-step ancestral sampling of 1000 images costs
about 32 TFLOP, minutes of CPU; DDIM-50 costs 1/20 of that).

The quick preset trains 1200 steps in bf16 where the hardware multiplies it natively (``precision`` "auto",
``genbench.runner.precision``): on digits over seeds 0-2 (2026-12-03, ``bench/results/precision_digits.md`` and
README "Speed") bf16 held quality at 2000 steps (FID 6.7 ± 1.9 vs 7.0 ± 0.4 in fp32, test bound 2.091 vs 2.090
bits/dim), and 1200 bf16 steps with the cosine decay ending there gave the FID of 2000 fp32 steps (7.0 ± 0.8) at
1.8x less training time, for a bound 0.03 bits/dim looser (2.119; 1500 steps: 2.107).  The standard preset keeps
its steps for the bound.

The quick and standard presets learn the variances with L_hybrid and start the cosine schedule at the levels'
``sigma_min`` (below); on digits at ``quick`` (seed 0, 2026-11-30) the test bound fell from 3.47 (fixed beta~, the
clamped mean) to 2.11 bits/dim; ``sigma_min`` does most of it (2.13 alone), the learned variances give 0.03 at
equal steps with it (validation 2.094 vs 2.125 at step 1000) and 0.27 without it (3.28 vs 3.56 at step 500).

Learned variances (Nichol & Dhariwal 2021, ``genbench.diffusion.learned_variance``): ``learn_sigma`` doubles the
U-Net's output channels to (eps, v), Sigma_theta = exp(v log beta_t + (1 - v) log beta~_t) (eq. 15), used by
Algorithm 2 and by the bound; ``loss`` = "hybrid" trains L_simple + 0.001 L_vlb with the mean stop-gradient in
L_vlb (eq. 16), "vlb" the bound alone; ``t_sampling`` = "importance" draws t with p_t proportional to
sqrt(E[L_t^2]) over a 10-value history per t (section 3.3, ``genbench.diffusion.importance``).  ``sigma_min`` =
"auto" spreads the cosine schedule's T steps from a first noise std of 1/(3(K-1)) (``schedule.cosine_betas``):
the steps below a fraction of a level cost KL terms without changing a pixel's level (on digits the first three
terms were 0.65 of a 2.97 bits/dim bound).

The bound is that of the sampled model: with ``clip_denoised`` its mean is the posterior mean at the clamped
predicted x_0, as in Algorithm 2 here (``schedule.model_mean``).  Without it, the cosine schedule's last step
(beta_T clipped at 0.999) multiplies the error of eps by 1 / sqrt(alpha_T) ~ 32: on digits at ``quick`` that one
term was 1.13 of the bound's 4.59 bits/dim (exact sum over t, 20 test images).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig, NLLEstimate
from genbench.tasks.delegate import RestorationModule
from genbench.diffusion import (
    STRIDED_SAMPLERS, Schedule, UNet, UNetConfig, ancestral_sample, ddim_sample, denoising_step,
    discretised_gaussian_nll, lowest_resolution, sampler_name, sampler_nfe, strided_ancestral_sample, vlb_stratified,
)
from genbench.config import ConfigError
from genbench.diffusion.importance import ImportanceSampler
from genbench.diffusion.learned_variance import eps_and_log_variance, hybrid_step, options_error, split_output
from genbench.diffusion.decoders import L0Fn
from genbench.diffusion.schedule import level_sigma_min
from genbench.nn.ema import averaged_copy, ema_decay, ema_update
from genbench.nn.lr import warmup_cosine_lr
from genbench.nn.seeding import content_generator


@dataclass
class DDPMConfig(ModelConfig):
    """Defaults are Ho et al.'s CIFAR-10 configuration (appendix B); presets shrink them for CPUs."""

    T: int = 1000
    schedule: str = "linear"  # "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal 2021)
    sigma_min: str | None = None  # cosine only: noise std of x_1: "auto" = 1/(3(K-1)), a number, none = the schedule's
    ch: int = 128
    ch_mult: list[int] = field(default_factory=lambda: [1, 2, 2, 2])
    num_res_blocks: int = 2
    attn_resolutions: list[int] = field(default_factory=lambda: [16])
    dropout: float = 0.1
    lr: float = 2e-4
    warmup_steps: int = 5000  # linear learning-rate warm-up
    lr_decay: bool = False  # cosine decay of the learning rate to 10% over max_steps
    grad_clip: float = 1.0
    ema_decay: float = 0.9999  # 0 disables the EMA (samples from the trained weights)
    ema_warmup: bool = True  # decay min(ema_decay, (1 + n) / (10 + n))
    variance: str = "beta"  # sigma_t^2 of the reverse process: "beta" or "posterior" (beta~); see learn_sigma
    learn_sigma: bool = False  # learned Sigma_theta between beta and beta~ (Nichol & Dhariwal eq. 15)
    loss: str = "simple"  # "simple" (Ho et al. eq. 14), "hybrid" (L_simple + hybrid_lambda L_vlb), "vlb"
    hybrid_lambda: float = 0.001  # lambda of L_hybrid (Nichol & Dhariwal eq. 16)
    t_sampling: str = "uniform"  # t of the training loss: "uniform" or "importance" (p_t ~ sqrt(E[L_t^2]))
    clip_denoised: bool = True  # clamp the predicted x_0 to [-1, 1] while sampling
    ddim_eta: float = 0.0  # DDIM noise (0 = deterministic), used when sample(steps < T)
    strided_sampler: str = "ddim"  # what sample(steps < T) runs: "ddim", or "ancestral" on the respaced schedule
    vlb_strata: int = 32  # t-strata of the unbiased bound estimate in nll() (validation, checkpoint selection)
    test_vlb_strata: int = 64  # t-strata of the estimate reported by nll_estimates() (test bits/dim)
    batch_size: int = 128
    max_steps: int | None = 800_000
    sample_steps: list[int | None] = field(default_factory=lambda: [None])

    def __post_init__(self) -> None:
        """The training options that cannot work together, while the config is resolved (before any work)."""
        if self.variance not in ("beta", "posterior"):
            raise ConfigError(f"ddpm: variance must be 'beta' or 'posterior', got {self.variance!r}; "
                              "use e.g. --set variance=posterior")
        if self.strided_sampler not in STRIDED_SAMPLERS:
            raise ConfigError(f"ddpm: strided_sampler must be one of {', '.join(STRIDED_SAMPLERS)}, got "
                              f"{self.strided_sampler!r}; use e.g. --set strided_sampler=ancestral")
        problem = options_error(self.learn_sigma, self.loss, self.t_sampling)
        if problem:
            raise ConfigError(f"ddpm: {problem}")
        if self.sigma_min is not None:
            if self.schedule != "cosine":
                raise ConfigError("ddpm: sigma_min fits the cosine schedule's first step; add --set schedule=cosine "
                                  "or --set sigma_min=none")
            try:
                value = None if self.sigma_min == "auto" else float(self.sigma_min)
            except ValueError:
                value = -1.0
            if value is not None and not 0 < value < 1:
                raise ConfigError(f"ddpm: sigma_min must be 'auto', none or a number in (0, 1), got "
                                  f"{self.sigma_min!r}; use e.g. --set sigma_min=auto")


class DDPM(RestorationModule, GenerativeModel):
    """Denoising diffusion probabilistic model (Ho et al. 2020) with DDIM sampling (Song et al. 2021)."""

    name = "ddpm"
    description = "DDPM (Ho et al. 2020): eps-prediction U-Net, ancestral + DDIM sampling, VLB bits/dim"
    Config = DDPMConfig
    likelihood = "VLB"
    supports_steps = True
    capabilities = frozenset({"complete", "denoise", "colourise"})  # genbench.tasks, in completion.py
    restoration_module = "genbench_ddpm.completion"
    compiled_sampling_modules = ("ema", "net")  # the U-Net the samplers call (compile_sampler; genbench.nn.compiled)
    presets: dict[str, dict[str, Any]] = {
        "tiny": {
            "T": 20, "ch": 8, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
            "lr": 1e-3, "warmup_steps": 0, "ema_decay": 0.9, "variance": "posterior", "batch_size": 16,
            "max_steps": 5, "eval_every": 5, "n_samples": 16, "sample_batch_size": 16, "sample_steps": [None, 5],
            "vlb_strata": 4, "test_vlb_strata": 4,
        },
        "quick": {
            "T": 1000, "schedule": "cosine", "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1,
            "attn_resolutions": [], "dropout": 0.0, "lr": 2e-3, "warmup_steps": 100, "lr_decay": True,
            "ema_decay": 0.995, "variance": "posterior", "learn_sigma": True, "loss": "hybrid", "sigma_min": "auto",
            "batch_size": 128, "max_steps": 1200, "max_minutes": 4.5, "precision": "auto",
            "eval_every": 500, "n_samples": 1000, "sample_batch_size": 500, "sample_steps": [50],
            "vlb_strata": 32, "test_vlb_strata": 64,
        },
        "standard": {
            "T": 1000, "schedule": "cosine", "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1,
            "attn_resolutions": [], "dropout": 0.0, "lr": 2e-3, "warmup_steps": 100, "lr_decay": True,
            "ema_decay": 0.999, "variance": "posterior", "learn_sigma": True, "loss": "hybrid", "sigma_min": "auto",
            "batch_size": 128, "max_steps": 5000, "max_minutes": 20.0,
            "eval_every": 1000, "n_samples": 1000, "sample_batch_size": 500, "sample_steps": [None, 50, 20],
            "vlb_strata": 32, "test_vlb_strata": 128,
        },
        "paper": {
            "T": 1000, "schedule": "linear", "ch": 128, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 2,
            "attn_resolutions": [16], "dropout": 0.1, "lr": 2e-4, "warmup_steps": 5000, "ema_decay": 0.9999,
            "variance": "beta", "batch_size": 128, "max_steps": 800_000, "eval_every": 10_000,
            "sample_steps": [None, 50], "n_samples": 50_000, "sample_batch_size": 500, "compile_sampler": "auto",
        },
    }

    #: per-preset overrides for large images (``genbench.model.large_images``: 28x28, 32x32).  quick: 3,000 test
    #: images (``LIKELIHOOD_IMAGE_CAPS``) x 21 network calls, the cost of 1,000 x 65 before.  standard: the shared
    #: 20-minute bf16 budget (``LARGE_IMAGE_BUDGETS``) is ~1,800 steps of batch 128 on 2 cores (672 ms per step at
    #: 28x28), so the cosine decay ends there and the EMA (0.995, ~200 steps) forgets the early steps; validation
    #: every 600 steps on 16 strata, the test bound on 32.  Samplers: Algorithm 2 on 100 and 50 respaced steps with
    #: the learned variances (Nichol & Dhariwal section 4, ``strided_sampler``), not DDIM: a network trained for
    #: 3-4 epochs errs, and the fresh noise of each ancestral step corrects part of the error (Karras et al. 2022,
    #: section 4) where DDIM's deterministic path carries it to the end (on 2026-12-01 DDIM-50 reached FID 259,
    #: 368x the floor, against the VDM's 160 with ancestral-100 at the same budget); 1000-step ancestral sampling
    #: costs 2.2 s per image (37 minutes for 1,000 samples).
    large_presets: dict[str, dict[str, Any]] = {
        "quick": {"test_vlb_strata": 20},
        "standard": {"max_steps": 1800, "eval_every": 600, "ema_decay": 0.995, "sample_steps": [100, 50],
                     "strided_sampler": "ancestral", "vlb_strata": 16, "test_vlb_strata": 32},
    }

    @classmethod
    def preset_overrides(cls, preset: str, data: DataSpec) -> dict[str, Any]:
        """The preset, with attention placed at the lowest resolution the U-Net reaches on this data for
        "quick" and "standard" (8x8 -> 4, 28x28 -> 14, 32x32 -> 16 with two levels); "paper" keeps 16x16; on
        large images :attr:`large_presets` on top."""
        values = super().preset_overrides(preset, data)
        if preset in ("quick", "standard"):
            values["attn_resolutions"] = [lowest_resolution(data.height, data.width, len(values["ch_mult"]))]
        return values

    def __init__(self, config: DDPMConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        c = config
        self.schedule = Schedule.make(c.schedule, c.T, self.sigma_min)
        unet_cfg = UNetConfig(
            in_channels=data.channels, ch=c.ch, ch_mult=tuple(c.ch_mult), num_res_blocks=c.num_res_blocks,
            attn_resolutions=tuple(c.attn_resolutions), dropout=c.dropout,
            out_channels=2 * data.channels if c.learn_sigma else None,
        )
        net = UNet(unet_cfg, (data.height, data.width)).to(self.device)
        self.networks = {"net": net}
        if c.ema_decay > 0:
            self.averaged = {"ema": averaged_copy(net)}
        # foreach: one fused update over all tensors (bit-identical to the per-tensor loop, ~30% faster on a CPU)
        self.optimizers = {"opt": torch.optim.Adam(net.parameters(), lr=c.lr, foreach=True)}
        self.t_sampler = ImportanceSampler(c.T) if c.t_sampling == "importance" else None

    # ------------------------------------------------------------------ helpers
    @property
    def net(self) -> UNet:
        return self.networks["net"]  # type: ignore[return-value]

    @property
    def sampling_net(self) -> UNet:
        """The EMA weights if there are any (Ho et al. sample with the EMA), else the trained ones."""
        return self.averaged.get("ema", self.net)  # type: ignore[return-value]

    def eps_fn(self, x: Tensor, t: Tensor) -> Tensor:
        """eps_theta(x_t, t) of the sampling network (x on the model's device, any batch)."""
        out = self.sampling_net(x, t.to(self.device))
        return out[:, : self.data.channels] if self.config.learn_sigma else out

    def eps_var_fn(self, x: Tensor, t: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """What Algorithm 2 and the bound use: eps_theta, or (eps_theta, log Sigma_theta) with ``learn_sigma``."""
        t = t.to(self.device)
        out = self.sampling_net(x, t)
        if not self.config.learn_sigma:
            return out
        return eps_and_log_variance(self.schedule, out, t, self.data.channels)

    def eps_v_fn(self, x: Tensor, t: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """What the strided ancestral sampler uses: eps_theta, or (eps_theta, v) with ``learn_sigma`` (v of eq. 15,
        which the sampler interpolates with the respaced schedule's beta and beta~)."""
        out = self.sampling_net(x, t.to(self.device))
        return split_output(out, self.data.channels) if self.config.learn_sigma else out

    @property
    def clip_x0(self) -> float | None:
        """The clamp of the predicted x_0 in Algorithm 2 and in the bound (1 with ``clip_denoised``, else none)."""
        return 1.0 if self.config.clip_denoised else None

    @property
    def sigma_min(self) -> float | None:
        """The first step's noise std the schedule is fitted to (``level_sigma_min`` for "auto"), or None."""
        c = self.config
        if c.sigma_min is None:
            return None
        return level_sigma_min(self.data.levels) if c.sigma_min == "auto" else float(c.sigma_min)

    @property
    def decoder_nll(self) -> L0Fn:
        """L_0: the discretised Gaussian decoder (Ho et al. eq. 13), its variance floored at beta_1 (the noise in
        x_1) when the schedule starts at ``sigma_min`` or the variance is learned (``decoders``)."""
        floor = float(self.schedule.betas[0]) if (self.config.sigma_min is not None or self.config.learn_sigma) else None
        return discretised_gaussian_nll(self.data.levels, floor)

    @property
    def variance_name(self) -> str:
        return "learned" if self.config.learn_sigma else self.config.variance

    def lr_at(self, step: int) -> float:
        """Linear warm-up over ``warmup_steps``, then constant, or cosine-decayed to 10% at ``max_steps``."""
        c = self.config
        return warmup_cosine_lr(c.lr, step, c.warmup_steps, c.max_steps if c.lr_decay and c.max_steps else None)

    # ------------------------------------------------------------------ training
    def train_step(self, x: Tensor) -> dict[str, float]:
        """Algorithm 1: t ~ U{1..T}, eps ~ N(0, I), gradient step on ||eps - eps_theta(sqrt(abar_t) x_0 +
        sqrt(1 - abar_t) eps, t)||^2 (Ho et al. eq. 14, L_simple), then the EMA update."""
        c = self.config
        x0 = x.to(self.device) * 2 - 1
        if c.loss == "simple":
            loss, gnorm = denoising_step(self.net, self.optimizers["opt"], self.schedule, x0, self.lr_at(self.step),
                                         c.grad_clip)
        else:  # Nichol & Dhariwal eq. 16 (or L_vlb alone), t uniform or importance-sampled
            loss, gnorm = hybrid_step(self.net, self.optimizers["opt"], self.schedule, x0, self.lr_at(self.step),
                                      c.grad_clip, self.decoder_nll, loss=c.loss,
                                      lam=c.hybrid_lambda, sampler=self.t_sampler, clip_x0=self.clip_x0,
                                      variance=c.variance)
        if "ema" in self.averaged:
            ema_update(self.averaged["ema"], self.net, ema_decay(self.step, c.ema_decay, c.ema_warmup))
        return {"loss": float(loss), "grad_norm": float(gnorm)}

    # ------------------------------------------------------------------ sampling
    def sampler_name(self, steps: int | None) -> str:
        c = self.config
        return sampler_name(c.T, steps, c.ddim_eta, c.strided_sampler)

    def nfe(self, steps: int | None) -> int:
        """T for Algorithm 2, the number of strided time indices (DDIM or respaced Algorithm 2) otherwise."""
        return sampler_nfe(self.config.T, steps)

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Algorithm 2 (``steps`` None or >= T), else DDIM with ``steps`` evaluations, or Algorithm 2 on the
        respaced schedule of ``steps`` indices with ``strided_sampler`` = "ancestral" (Nichol & Dhariwal 2021,
        section 4: with learned variances it needs no other change); floats in [0, 1]."""
        c = self.config
        shape = (n, *self.data.shape)
        clip = 1.0 if c.clip_denoised else None
        if steps is None or steps >= c.T:
            x, _ = ancestral_sample(self.eps_var_fn, self.schedule, shape, generator=generator, device=self.device,
                                    variance=c.variance, clip_x0=clip)
        elif c.strided_sampler == "ancestral":
            x, _ = strided_ancestral_sample(self.eps_v_fn, self.schedule, shape, steps, learned_variance=c.learn_sigma,
                                            generator=generator, device=self.device, variance=c.variance,
                                            clip_x0=clip)
        else:
            x, _ = ddim_sample(self.eps_fn, self.schedule, shape, steps, eta=c.ddim_eta, generator=generator,
                               device=self.device, clip_x0=clip)
        return ((x + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ likelihood
    def _bound(self, x: Tensor, strata: int) -> Tensor:
        """The stratified bound with the discretised Gaussian L_0; t and noise from a generator seeded by the
        batch's content (reproducible; checkpoints compared on the same batch share their draws)."""
        x0 = x.to(self.device) * 2 - 1
        return vlb_stratified(self.eps_var_fn, self.schedule, x0, strata, self.decoder_nll,
                              variance=self.config.variance, generator=content_generator(x), chunk=1024,
                              clip_x0=self.clip_x0).to(torch.float32)

    def nll(self, x: Tensor) -> Tensor:
        """Negative VLB (Ho et al. eq. 5) in nats per image: L_T + L_0 exactly and an unbiased stratified
        estimate of sum_{t>=2} L_{t-1} with ``vlb_strata`` draws of t (``genbench.diffusion.vlb``)."""
        return self._bound(x, self.config.vlb_strata)

    def nll_estimates(self, x: Tensor) -> list[NLLEstimate]:
        """The same bound with ``test_vlb_strata`` strata (lower variance) for the reported bits/dim."""
        k = self.config.test_vlb_strata
        return [NLLEstimate("VLB", self._bound(x, k), params={
            "estimator": "stratified-t", "strata": k, "t_draws_per_image": k + 1, "T": self.config.T,
            "variance_reduction": "one t per geometric stratum of 2..T weighted by its size; L_0 at t = 1 and "
                                  "L_T exact", "variance": self.variance_name,
            "clip_x0": self.clip_x0, "loss": self.config.loss, "sigma_min": self.sigma_min})]

    # ------------------------------------------------------------------ checkpoints
    def extra_state(self) -> dict[str, Any]:
        """The importance sampler's history of L_t (so a resumed run draws t as the uninterrupted one would)."""
        return {"t_sampler": self.t_sampler.state_dict()} if self.t_sampler is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.t_sampler is not None and "t_sampler" in state:
            self.t_sampler.load_state_dict(state["t_sampler"])
        elif set(state) - {"t_sampler"}:
            raise ValueError(f"{self.name}: unexpected extra state {sorted(state)}")
