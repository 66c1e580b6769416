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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig, NLLEstimate
from genbench.diffusion import (
    Schedule, UNet, UNetConfig, ancestral_sample, ddim_sample, denoising_step, discretised_gaussian_nll,
    lowest_resolution, sampler_name, sampler_nfe, vlb_stratified,
)
from genbench.nn.ema import averaged_copy, ema_decay, ema_update
from genbench.nn.lr import warmup_cosine_lr
from genbench.nn.seeding import content_generator


@dataclass
class DDPMConfig(ModelConfig):
    """Defaults are Ho et al.'s CIFAR-10 configuration (appendix B); presets shrink them for CPUs."""

    T: int = 1000
    schedule: str = "linear"  # "linear" (Ho et al.) or "cosine" (Nichol & Dhariwal 2021)
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
    variance: str = "beta"  # sigma_t^2 of the reverse process: "beta" or "posterior" (beta~)
    clip_denoised: bool = True  # clamp the predicted x_0 to [-1, 1] while sampling
    ddim_eta: float = 0.0  # DDIM noise (0 = deterministic), used when sample(steps < T)
    vlb_strata: int = 8  # t-strata of the unbiased bound estimate in nll() (validation)
    test_vlb_strata: int = 32  # t-strata of the estimate reported by nll_estimates() (test bits/dim)
    batch_size: int = 128
    max_steps: int | None = 800_000
    sample_steps: list[int | None] = field(default_factory=lambda: [None])


class DDPM(GenerativeModel):
    """Denoising diffusion probabilistic model (Ho et al. 2020) with DDIM sampling (Song et al. 2021)."""

    name = "ddpm"
    description = "DDPM (Ho et al. 2020): eps-prediction U-Net, ancestral + DDIM sampling, VLB bits/dim"
    Config = DDPMConfig
    likelihood = "VLB"
    supports_steps = True
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
            "ema_decay": 0.995, "variance": "posterior", "batch_size": 128, "max_steps": 2000, "max_minutes": 4.5,
            "eval_every": 500, "n_samples": 1000, "sample_batch_size": 500, "sample_steps": [50],
            "vlb_strata": 8, "test_vlb_strata": 32,
        },
        "standard": {
            "T": 1000, "schedule": "cosine", "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1,
            "attn_resolutions": [], "dropout": 0.0, "lr": 2e-3, "warmup_steps": 100, "lr_decay": True,
            "ema_decay": 0.999, "variance": "posterior", "batch_size": 128, "max_steps": 5000, "max_minutes": 20.0,
            "eval_every": 1000, "n_samples": 1000, "sample_batch_size": 500, "sample_steps": [None, 50, 20],
            "vlb_strata": 8, "test_vlb_strata": 64,
        },
        "paper": {
            "T": 1000, "schedule": "linear", "ch": 128, "ch_mult": [1, 2, 2, 2], "num_res_blocks": 2,
            "attn_resolutions": [16], "dropout": 0.1, "lr": 2e-4, "warmup_steps": 5000, "ema_decay": 0.9999,
            "variance": "beta", "batch_size": 128, "max_steps": 800_000, "eval_every": 10_000,
            "sample_steps": [None, 50], "n_samples": 50_000, "sample_batch_size": 500,
        },
    }

    @classmethod
    def preset_overrides(cls, preset: str, data: DataSpec) -> dict[str, Any]:
        """The preset, with attention placed at the lowest resolution the U-Net reaches on this data for
        "quick" and "standard" (8x8 -> 4, 28x28 -> 14, 32x32 -> 16 with two levels); "paper" keeps 16x16."""
        values = super().preset_overrides(preset, data)
        if preset in ("quick", "standard"):
            values["attn_resolutions"] = [lowest_resolution(data.height, data.width, len(values["ch_mult"]))]
        return values

    def __init__(self, config: DDPMConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        c = config
        if c.variance not in ("beta", "posterior"):
            raise ValueError(f"variance must be 'beta' or 'posterior', got {c.variance!r}")
        self.schedule = Schedule.make(c.schedule, c.T)
        unet_cfg = UNetConfig(
            in_channels=data.channels, ch=c.ch, ch_mult=tuple(c.ch_mult), num_res_blocks=c.num_res_blocks,
            attn_resolutions=tuple(c.attn_resolutions), dropout=c.dropout,
        )
        net = UNet(unet_cfg, (data.height, data.width)).to(self.device)
        self.networks = {"net": net}
        if c.ema_decay > 0:
            self.averaged = {"ema": averaged_copy(net)}
        self.optimizers = {"opt": torch.optim.Adam(net.parameters(), lr=c.lr)}

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
        return self.sampling_net(x, t.to(self.device))

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
        loss, gnorm = denoising_step(self.net, self.optimizers["opt"], self.schedule, x0, self.lr_at(self.step),
                                     c.grad_clip)
        if "ema" in self.averaged:
            ema_update(self.averaged["ema"], self.net, ema_decay(self.step, c.ema_decay, c.ema_warmup))
        return {"loss": float(loss), "grad_norm": float(gnorm)}

    # ------------------------------------------------------------------ sampling
    def sampler_name(self, steps: int | None) -> str:
        return sampler_name(self.config.T, steps, self.config.ddim_eta)

    def nfe(self, steps: int | None) -> int:
        """T for Algorithm 2, the number of DDIM time indices otherwise."""
        return sampler_nfe(self.config.T, steps)

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Algorithm 2 (``steps`` None or >= T), else DDIM with ``steps`` evaluations; floats in [0, 1]."""
        c = self.config
        shape = (n, *self.data.shape)
        clip = 1.0 if c.clip_denoised else None
        if steps is None or steps >= c.T:
            x, _ = ancestral_sample(self.eps_fn, self.schedule, shape, generator=generator, device=self.device,
                                    variance=c.variance, clip_x0=clip)
        else:
            x, _ = ddim_sample(self.eps_fn, self.schedule, shape, steps, eta=c.ddim_eta, generator=generator,
                               device=self.device, clip_x0=clip)
        return ((x + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ likelihood
    def _bound(self, x: Tensor, strata: int) -> Tensor:
        """The stratified bound with the discretised Gaussian L_0; t and noise from a generator seeded by the
        batch's content (reproducible; checkpoints compared on the same batch share their draws)."""
        x0 = x.to(self.device) * 2 - 1
        return vlb_stratified(self.eps_fn, self.schedule, x0, strata, discretised_gaussian_nll(self.data.levels),
                              variance=self.config.variance, generator=content_generator(x),
                              chunk=1024).to(torch.float32)

    def nll(self, x: Tensor) -> Tensor:
        """Negative VLB (Ho et al. eq. 5) in nats per image: L_T + L_0 exactly and an unbiased stratified
        estimate of sum_{t>=2} L_{t-1} with ``vlb_strata`` draws of t (``genbench.diffusion.vlb``)."""
        return self._bound(x, self.config.vlb_strata)

    def nll_estimates(self, x: Tensor) -> list[NLLEstimate]:
        """The same bound with ``test_vlb_strata`` strata (lower variance) for the reported bits/dim."""
        k = self.config.test_vlb_strata
        return [NLLEstimate("VLB", self._bound(x, k), params={
            "estimator": "stratified-t", "strata": k, "T": self.config.T, "variance": self.config.variance})]
