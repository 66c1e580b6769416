"""DDPM as a genbench GenerativeModel: Algorithm 1 with EMA, Algorithm 2 / DDIM sampling, the VLB in nats.

Images k/(K-1) in [0, 1] are mapped to [-1, 1] (Ho et al. section 3.3).  The exponential moving average
of the weights ("ema" network) is what samples and what the bound is computed with.

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

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig, NLLEstimate

from .ema import ema_copy, ema_decay, ema_update
from .samplers import ancestral_sample, ddim_sample
from .schedule import Schedule, q_sample
from .unet import UNet, UNetConfig
from .vlb import vlb_stratified


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
    likelihood = "bound"
    likelihood_kind = "VLB"
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
            size = min(data.height, data.width)
            for _ in range(len(values["ch_mult"]) - 1):
                size = (size + 1) // 2
            values["attn_resolutions"] = [size]
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
            self.networks["ema"] = ema_copy(net)
        self.optimizers = {"opt": torch.optim.Adam(net.parameters(), lr=c.lr)}

    # ------------------------------------------------------------------ helpers
    @property
    def net(self) -> UNet:
        return self.networks["net"]  # type: ignore[return-value]

    @property
    def sampling_net(self) -> UNet:
        """The EMA weights if there are any (Ho et al. sample with the EMA), else the trained ones."""
        return self.networks.get("ema", self.net)  # type: ignore[return-value]

    def eps_fn(self, x: Tensor, t: Tensor) -> Tensor:
        """eps_theta(x_t, t) of the sampling network (x on the model's device, any batch)."""
        return self.sampling_net(x, t.to(self.device))

    def train(self, mode: bool = True) -> None:
        self.net.train(mode)
        if "ema" in self.networks:
            self.networks["ema"].train(False)  # the average is never trained; no dropout when it is used

    def count_parameters(self) -> int:
        """Parameters of the denoiser (the EMA copy is the same network, not extra capacity)."""
        return sum(p.numel() for p in self.net.parameters())

    def lr_at(self, step: int) -> float:
        """Linear warm-up over ``warmup_steps``, then constant, or cosine-decayed to 10% at ``max_steps``."""
        c = self.config
        lr = c.lr * min(1.0, (step + 1) / c.warmup_steps) if c.warmup_steps > 0 else c.lr
        if c.lr_decay and c.max_steps and step >= c.warmup_steps:
            frac = min(1.0, (step - c.warmup_steps) / max(1, c.max_steps - c.warmup_steps))
            lr *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))
        return lr

    # ------------------------------------------------------------------ training
    def train_step(self, x: Tensor) -> dict[str, float]:
        """Algorithm 1: t ~ U{1..T}, eps ~ N(0, I), gradient step on ||eps - eps_theta(sqrt(abar_t) x_0 +
        sqrt(1 - abar_t) eps, t)||^2 (Ho et al. eq. 14, L_simple), then the EMA update."""
        c = self.config
        x0 = x.to(self.device) * 2 - 1
        t = torch.randint(0, c.T, (len(x0),), device=self.device)
        eps = torch.randn_like(x0)
        loss = F.mse_loss(self.net(q_sample(self.schedule, x0, t, eps), t), eps)
        opt = self.optimizers["opt"]
        for group in opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), c.grad_clip) if c.grad_clip > 0 else torch.tensor(0.0)
        opt.step()
        if "ema" in self.networks:
            ema_update(self.networks["ema"], self.net, ema_decay(c.ema_decay, self.step, c.ema_warmup))
        return {"loss": float(loss.detach()), "grad_norm": float(gnorm)}

    # ------------------------------------------------------------------ sampling
    def sampler_name(self, steps: int | None) -> str:
        if steps is None or steps >= self.config.T:
            return f"ancestral-{self.config.T}"
        eta = f", eta={self.config.ddim_eta:g}" if self.config.ddim_eta else ""
        return f"DDIM-{steps}{eta}"

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Algorithm 2 (``steps`` None or >= T), else DDIM with ``steps`` evaluations; floats in [0, 1]."""
        c = self.config
        shape = (n, *self.data.shape)
        clip = 1.0 if c.clip_denoised else None
        if steps is None or steps >= c.T:
            x, nfe = ancestral_sample(self.eps_fn, self.schedule, shape, generator=generator, device=self.device,
                                      variance=c.variance, clip_x0=clip)
        else:
            x, nfe = ddim_sample(self.eps_fn, self.schedule, shape, steps, eta=c.ddim_eta, generator=generator,
                                 device=self.device, clip_x0=clip)
        self.last_nfe = nfe
        return ((x + 1) / 2).clamp(0, 1)

    # ------------------------------------------------------------------ likelihood
    @staticmethod
    def _content_generator(x: Tensor) -> torch.Generator:
        """A generator seeded by the batch's content: the estimate of an image batch is reproducible and
        evaluations of different checkpoints on the same batch share their t and noise draws."""
        digest = hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))

    def _bound(self, x: Tensor, strata: int) -> Tensor:
        x0 = x.to(self.device) * 2 - 1
        return vlb_stratified(self.eps_fn, self.schedule, x0, self.data.levels, strata, variance=self.config.variance,
                              generator=self._content_generator(x), chunk=1024)

    def nll(self, x: Tensor) -> Tensor:
        """Negative VLB (Ho et al. eq. 5) in nats per image: L_T + L_0 exactly and an unbiased stratified
        estimate of sum_{t>=2} L_{t-1} with ``vlb_strata`` draws of t (see ``vlb.vlb_stratified``)."""
        return self._bound(x, self.config.vlb_strata)

    def nll_estimates(self, x: Tensor) -> list[NLLEstimate]:
        """The same bound with ``test_vlb_strata`` strata (lower variance) for the reported bits/dim."""
        k = self.config.test_vlb_strata
        return [NLLEstimate("VLB", self._bound(x, k), {"estimator": "stratified-t", "strata": k, "T": self.config.T,
                                                       "variance": self.config.variance})]
