"""The GAN as a genbench model: alternating D/G Adam steps, G-EMA sampling, truncation.

One ``train_step`` on a real batch x (values in [0, 1], mapped to [-1, 1]):

1. ``n_critic`` discriminator steps on the same real batch, each with fresh
   z ~ N(0, I): minimise L_D(D(x), D(G(z))) (see :mod:`genbench_gan.losses`);
2. one generator step with fresh z: minimise L_G(D(G(z)));
3. theta_ema <- beta_t theta_ema + (1 - beta_t) theta_G (:mod:`genbench.nn.ema`; the average is
   ``averaged["g_ema"]``, its BatchNorm statistics are re-estimated by :mod:`genbench_gan.batchnorm`).

It returns both losses, D's mean logits and D's accuracy on real (logit > 0) and
fake (logit < 0) images of the last critic step.  A non-finite loss skips the
optimiser update and is returned as is, so the runner stops the cell with a
recorded divergence instead of training on NaNs.

Sampling is one pass of the EMA generator (NFE = 1) on z drawn on the CPU with the
caller's generator; with ``truncation`` = t > 0 every |z_i| > t is redrawn until it
lies inside (BigGAN's truncation trick, Brock et al. 2019, Sec. 3.1).  No likelihood.

Presets (measured on digits by bench/grids/gan_quick.toml and gan_standard.toml).  "quick" = SNGAN
setting C (hinge, Adam 2e-4, betas (0.5, 0.999), n_critic 1), widths 32, z in R^64, batch 64,
3000 steps (about 1 min on 2 CPU cores; max_minutes 2.25 caps it on a slower machine), in bf16 where the
hardware multiplies it natively (precision "auto": over seeds 0-2 on digits FID 9.05 +- 5.1 against 8.59 +- 2.5 in
fp32, the step 1.17x and the draws 2x faster; bench/results/precision_digits.md).
Why: spectral norm keeps D from overpowering G without extra critic steps, so n_critic = 1
gives several times the generator updates per second of n_critic = 5; width 32 trains
faster per step than width 64 on CPU (not benchmarked in the repo), buying steps, and steps (not width) are what digit
coverage needs; the G-EMA (with standing BatchNorm statistics) is what is sampled.  "standard" =
the same for 10000 steps; on the standard digits leaderboard (3 seeds, classifier-v3 features) it
scores FID 1.62x the real-data floor.  On large images (28x28, 32x32) "standard" spends the shared training
budget (``genbench.config.LARGE_IMAGE_BUDGETS``, 20 minutes) instead of stopping at 10000 steps: on
Fashion-MNIST the 10000 steps took 808 s of the 1200 (FID 2.53 = 3.6x the classifier floor, seed 0), so the
step cap left a third of the budget unspent; FID is scored every 2500 steps (curves.csv) to show what the extra
steps buy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig
from genbench.tasks.delegate import RestorationModule
from genbench.nn.ema import averaged_copy, ema_decay, ema_update
from genbench.nn.optim import optimiser_step
from genbench_gan.batchnorm import recalibrate_batchnorm
from genbench_gan.losses import get_losses
from genbench_gan.networks import Discriminator, Generator

CALIBRATION_SEED = 20_160_107  # fixed latents for the EMA generator's BatchNorm statistics


@dataclass
class GANConfig(ModelConfig):
    """Hyper-parameters; optimiser defaults are SNGAN setting C (Miyato et al. 2018, Table 1: lr 2e-4, betas (0.5, 0.999), n_dis 1)."""

    latent_dim: int = 128
    g_width: int = 64           # generator channels at full resolution (doubled per stage towards the base)
    d_width: int = 64           # discriminator channels at full resolution (doubled per stage)
    loss: str = "hinge"         # "hinge" (Miyato et al. 2018) or "ns" (non-saturating, Goodfellow et al. 2014)
    spectral_norm: bool = True  # spectral normalisation of every D layer
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5          # Adam beta1: 0.5 (DCGAN) or 0.0 (SNGAN n_dis=5 / BigGAN)
    beta2: float = 0.999
    n_critic: int = 1           # discriminator steps per generator step
    ema_decay: float = 0.999    # G-EMA decay (warm-up min(decay, (1+t)/(10+t)))
    use_ema: bool = True        # sample from the EMA generator (else the raw one)
    ema_calibration_batches: int = 8   # batches of 256 latents to re-estimate the EMA G's BatchNorm stats
    truncation: float | None = None    # truncation threshold on |z|; None/0 = off


class GAN(RestorationModule, GenerativeModel):
    """DCGAN generator + spectrally normalised DCGAN discriminator, hinge or NS loss, G-EMA."""

    name = "gan"
    description = "DCGAN (Radford et al. 2016) with spectral-norm D (Miyato et al. 2018), hinge/NS loss, G-EMA"
    Config = GANConfig
    likelihood = None
    capabilities = frozenset({"complete", "denoise"})  # genbench.tasks, in completion.py
    restoration_module = "genbench_gan.completion"
    presets: dict[str, dict[str, Any]] = {
        "tiny": {"max_steps": 2, "batch_size": 8, "latent_dim": 16, "g_width": 8, "d_width": 8,
                 "n_samples": 16, "sample_batch_size": 16, "ema_calibration_batches": 1},
        "quick": {"max_steps": 3000, "max_minutes": 2.25, "batch_size": 64, "latent_dim": 64, "g_width": 32, "d_width": 32,
                  "precision": "auto"},
        "standard": {"max_steps": 10000, "batch_size": 64, "latent_dim": 64, "g_width": 32, "d_width": 32},
    }
    #: on images larger than 8x8: the budget alone ends "standard" training (no step cap), with FID every 2500 steps
    large_presets: dict[str, dict[str, Any]] = {
        "standard": {"max_steps": None, "sample_every": 2500},
    }

    def __init__(self, config: GANConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        if config.n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {config.n_critic}")
        self.d_loss_fn, self.g_loss_fn = get_losses(config.loss)
        c, h, w = data.shape
        self.generator = Generator(config.latent_dim, c, h, w, config.g_width).to(self.device)
        self.discriminator = Discriminator(c, h, w, config.d_width, sn=config.spectral_norm).to(self.device)
        self.g_ema = averaged_copy(self.generator)
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.averaged = {"g_ema": self.g_ema}
        betas = (config.beta1, config.beta2)
        # foreach: one fused update over all tensors (bit-identical to the per-tensor loop, faster on a CPU)
        self.optimizers = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas, foreach=True),
            "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas,
                                              foreach=True),
        }
        self.ema_updates = 0
        self._calibrated_at: int | None = None  # ema_updates at which g_ema's BatchNorm stats were estimated

    # ------------------------------------------------------------------ training
    def _latents(self, n: int) -> Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.device)

    def train_step(self, x: Tensor) -> dict[str, float]:
        real = x.to(self.device) * 2.0 - 1.0
        n = len(real)
        g, d = self.generator, self.discriminator
        opt_g, opt_d = self.optimizers["generator"], self.optimizers["discriminator"]

        d.requires_grad_(True)
        for _ in range(self.config.n_critic):
            with torch.no_grad():
                fake = g(self._latents(n))
            logits = d(torch.cat([real, fake]))
            d_real, d_fake = logits[:n], logits[n:]
            loss_d = self.d_loss_fn(d_real, d_fake)
            if not torch.isfinite(loss_d):
                return self._report(loss_d, torch.tensor(math.nan), d_real, d_fake)
            optimiser_step(opt_d, loss_d)  # loss-scaled in fp16 runs, one scaler per optimiser (genbench.nn.optim)

        d.requires_grad_(False)  # G step: gradients flow through D to G only
        loss_g = self.g_loss_fn(d(g(self._latents(n))))
        if not torch.isfinite(loss_g):
            d.requires_grad_(True)
            return self._report(loss_d, loss_g, d_real, d_fake)
        optimiser_step(opt_g, loss_g)
        d.requires_grad_(True)

        ema_update(self.g_ema, g, ema_decay(self.ema_updates, self.config.ema_decay))
        self.ema_updates += 1
        return self._report(loss_d, loss_g, d_real, d_fake)

    @staticmethod
    def _report(loss_d: Tensor, loss_g: Tensor, d_real: Tensor, d_fake: Tensor) -> dict[str, float]:
        """Losses (``loss`` = D's loss), D's mean logits and its accuracy on real / fake images."""
        ld, lg = float(loss_d.detach()), float(loss_g.detach())
        return {
            "loss": ld,
            "loss_d": ld,
            "loss_g": lg,
            "d_acc_real": float((d_real.detach() > 0).float().mean()),
            "d_acc_fake": float((d_fake.detach() < 0).float().mean()),
            "d_real": float(d_real.detach().mean()),
            "d_fake": float(d_fake.detach().mean()),
        }

    # ------------------------------------------------------------------ sampling
    def sample_latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I) on the CPU; with truncation t, entries with |z| > t are redrawn (BigGAN Sec. 3.1)."""
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        t = self.config.truncation
        if t:
            if t <= 0:
                raise ValueError(f"truncation must be > 0 or None, got {t}")
            outside = z.abs() > t
            while outside.any():
                z[outside] = torch.randn(int(outside.sum()), generator=generator)
                outside = z.abs() > t
        return z

    def sampling_network(self) -> torch.nn.Module:
        """The EMA generator with BatchNorm statistics for its own weights (or the raw G if use_ema is off)."""
        if not self.config.use_ema:
            return self.generator
        if self._calibrated_at != self.ema_updates and self.config.ema_calibration_batches > 0:
            gen = torch.Generator().manual_seed(CALIBRATION_SEED)
            latents = [torch.randn(256, self.config.latent_dim, generator=gen).to(self.device)
                       for _ in range(self.config.ema_calibration_batches)]
            recalibrate_batchnorm(self.g_ema, latents)
            self._calibrated_at = self.ema_updates
        return self.g_ema

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        net = self.sampling_network()
        net.train(False)
        z = self.sample_latents(n, generator).to(self.device)
        return ((net(z) + 1.0) / 2.0).clamp(0.0, 1.0)

    def sampler_name(self, steps: int | None) -> str:
        name = "G-EMA" if self.config.use_ema else "G"
        return f"{name} trunc={self.config.truncation:g}" if self.config.truncation else name

    # ------------------------------------------------------------------ checkpoints
    def extra_state(self) -> dict[str, Any]:
        return {"ema_updates": int(self.ema_updates)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.ema_updates = int(state["ema_updates"])
        self._calibrated_at = None
