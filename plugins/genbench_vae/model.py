"""The VAE as a genbench model: training step, bounds of the discrete data, sampling.

Kingma & Welling 2014 (auto-encoding variational Bayes) with a convolutional
encoder/decoder (``networks``), a discrete decoder likelihood over the data's K
levels (``genbench.nn.discrete``) and the ELBO / IWAE-k bounds (``bounds``).

* ``nll(x)`` = -ELBO in nats per image (kind "ELBO"): the reconstruction term
  averaged over ``elbo_samples`` reparameterised draws, the KL in closed form.
* ``nll_estimates(x)`` adds -L_k, the IWAE bound with ``iwae_k`` importance samples
  (Burda et al. 2016, eq. 8), kind "IWAE" labelled "IWAE-k", with params {"k": k}.
* ``prior``: "standard" N(0, I) or "mixture", a learned mixture of ``prior_components``
  Gaussians (``priors``) that follows the aggregate posterior and so removes the prior
  holes that cost FID; with it the KL term is the unbiased one-draw estimate at the
  reconstruction's z, and the IWAE weights use its log-density.
* ``sample`` decodes z ~ p(z) once (NFE = 1) and outputs a draw from p(x|z)
  (``sample_mode="draw"``, the default) or its per-sub-pixel mode (``"mode"``).
  All randomness (z and the draw) comes from the caller's CPU generator.
* Optional KL warm-up (Sonderby et al. 2016): the KL weight rises linearly from 0
  to 1 over ``kl_warmup_steps``; the reported bounds always use weight 1.

Evaluation noise (eps for the bounds) comes from a private CPU generator seeded by
``eval_seed`` and the batch's pixels (``genbench.nn.seeding``), so ``nll`` is deterministic,
leaves the training RNG alone, and different batches get different draws.

Presets: "quick" and "standard" use the mixture prior; "quick" trains and samples in bf16 where the hardware
multiplies it natively (precision "auto"; over seeds 0-2 on digits FID 16.1 +- 2.1 against 16.2 +- 3.6 in fp32,
the bounds within 0.03 standard errors; the 8x8 step gains nothing, the draws 1.6x; bench/results/precision_digits.md).  On digits (bench/grids/vae_curve.toml and
vae_curve_normal_prior.toml, 4000 steps, dropout 0.4) the N(0, I) prior's decoded draws stay at FID ~20-24 (about 6x the floor)
while its validation ELBO is as good (1.883 vs 1.860 bits/dim); the learned mixture brings
the validation-selected draws to ~5-6 (about 1.7x).  The stronger dropout moves the
validation optimum later, where both the bound and the samples are better.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig, NLLEstimate
from genbench.tasks.delegate import RestorationModule
from genbench.nn.discrete import DiscreteLikelihood, make_likelihood
from genbench.nn.optim import optimiser_step
from genbench.nn.seeding import content_generator

from .bounds import elbo_terms, iwae_bound, reparameterise
from .networks import Decoder, Encoder
from .priors import make_prior

#: elements of decoder output/activations allowed per decoder call when chunking samples
DECODE_BUDGET = 2**24


@dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = 16
    channels: int = 32  # base width of encoder/decoder
    dropout: float = 0.0
    decoder_likelihood: str = "auto"  # categorical | logistic | auto (categorical for K <= 64)
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 100.0
    prior: str = "standard"  # standard (N(0, I)) | mixture (learned mixture of Gaussians)
    prior_components: int = 32  # mixture components of prior="mixture"
    kl_warmup_steps: int = 0  # 0 = no warm-up
    elbo_samples: int = 1  # reparameterised draws for the reported ELBO's reconstruction term
    iwae_k: int = 100  # importance samples of the IWAE row
    sample_mode: str = "draw"  # draw | mode
    eval_seed: int = 0


class VAE(RestorationModule, GenerativeModel):
    """Convolutional VAE with a discrete decoder; reports -ELBO and -IWAE_k of the discrete data."""

    name = "vae"
    description = "convolutional VAE, discrete decoder (categorical / discretised logistic); -ELBO and IWAE-k bounds"
    Config = VAEConfig
    likelihood = "ELBO"
    supports_steps = False
    capabilities = frozenset({"complete", "denoise"})  # genbench.tasks, in completion.py
    restoration_module = "genbench_vae.completion"
    presets: dict[str, dict[str, Any]] = {
        "tiny": {"max_steps": 2, "batch_size": 8, "eval_every": 2, "n_samples": 8, "sample_batch_size": 8,
                 "latent_dim": 4, "channels": 8, "iwae_k": 4},
        "quick": {"max_steps": 600, "max_minutes": 0.75, "eval_every": 50, "lr": 2e-3, "dropout": 0.2,
                  "prior": "mixture", "n_samples": 1000, "sample_batch_size": 500, "precision": "auto"},
        "standard": {"max_steps": 4000, "eval_every": 50, "lr": 2e-3, "dropout": 0.4, "prior": "mixture",
                     "n_samples": 1000, "sample_batch_size": 500},
    }
    #: per-preset overrides for images larger than 8x8 (MNIST/Fashion-MNIST 28x28, CIFAR 32x32)
    large_presets: dict[str, dict[str, Any]] = {
        "quick": {"max_steps": 1500, "max_minutes": 3.0, "eval_every": 250, "batch_size": 64, "latent_dim": 32,
                  "channels": 32, "dropout": 0.0, "lr": 1e-3, "iwae_k": 10},
        "standard": {"max_steps": 20000, "eval_every": 1000, "batch_size": 128, "latent_dim": 64, "channels": 64,
                     "dropout": 0.0, "lr": 1e-3},
    }

    def __init__(self, config: VAEConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        if config.sample_mode not in ("draw", "mode"):
            raise ValueError(f"sample_mode must be 'draw' or 'mode', got {config.sample_mode!r}")
        self.lik: DiscreteLikelihood = make_likelihood(config.decoder_likelihood, data.levels)
        c, h, w = data.shape
        enc = Encoder(c, h, w, config.latent_dim, config.channels, config.dropout).to(self.device)
        dec = Decoder(c, h, w, config.latent_dim, config.channels, self.lik.n_params, config.dropout).to(self.device)
        prior = make_prior(config.prior, config.latent_dim, config.prior_components).to(self.device)
        self.networks = {"encoder": enc, "decoder": dec, "prior": prior}
        params = [p for net in self.networks.values() for p in net.parameters()]
        # foreach: one fused update over all tensors (bit-identical to the per-tensor loop, faster on a CPU)
        self.optimizers = {"adam": torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                                     foreach=True)}

    # ------------------------------------------------------------------ pieces
    @property
    def encoder(self) -> Encoder:
        return self.networks["encoder"]  # type: ignore[return-value]

    @property
    def decoder(self) -> Decoder:
        return self.networks["decoder"]  # type: ignore[return-value]

    @property
    def prior(self) -> torch.nn.Module:
        return self.networks["prior"]

    def kl_weight(self) -> float:
        """beta_t = min(1, t / warm-up steps) (Sonderby et al. 2016); 1 without warm-up."""
        n = self.config.kl_warmup_steps
        return 1.0 if n <= 0 else min(1.0, self.step / n)

    def decode_chunk(self, batch: int) -> int:
        """How many images one decoder call may hold within DECODE_BUDGET elements."""
        c, h, w = self.data.shape
        per_image = h * w * max(c * self.lik.n_params, 4 * self.config.channels)
        return max(1, DECODE_BUDGET // (per_image * max(1, batch)))

    def log_px_given_z(self, z: Tensor, levels: Tensor) -> Tensor:
        """log p(x|z) for z (m, B, L) and levels (B, C, H, W) -> (m, B)."""
        m, b = z.shape[:2]
        params = self.decoder(z)
        lv = levels.unsqueeze(0).expand(m, *levels.shape).reshape(m * b, *levels.shape[1:])
        return self.lik.log_likelihood(params, lv).reshape(m, b)

    def _eval_generator(self, levels: Tensor, salt: int) -> torch.Generator:
        """Seeded by the batch's levels, ``eval_seed`` and ``salt`` (1: the ELBO, 2: IWAE)."""
        return content_generator(levels.to(torch.int64), salt=1_000_003 * self.config.eval_seed + salt, nbytes=7,
                                 modulus=2**62)

    def _eps(self, gen: torch.Generator, *shape: int) -> Tensor:
        return torch.randn(*shape, generator=gen).to(self.device)

    # ------------------------------------------------------------------ bounds
    def elbo(self, x: Tensor, eps: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(elbo, reconstruction, kl) per image, nats; ``eps`` (S, B, L) or S=elbo_samples fresh draws."""
        levels = self.data.to_levels(x)
        mu, logvar = self.encoder(x)
        if eps is None:
            gen = self._eval_generator(levels, salt=1)
            eps = self._eps(gen, self.config.elbo_samples, len(x), self.config.latent_dim)
        recon = torch.zeros(len(x), device=self.device)
        kl = None if self.prior.analytic_kl else torch.zeros(len(x), device=self.device)
        chunk = self.decode_chunk(len(x))
        for i in range(0, len(eps), chunk):
            z = reparameterise(mu, logvar, eps[i : i + chunk])
            recon = recon + self.log_px_given_z(z, levels).sum(0)
            if kl is not None:
                kl = kl + self.prior.kl(mu, logvar, z).sum(0)
        return elbo_terms(recon / len(eps), mu, logvar, None if kl is None else kl / len(eps))

    def iwae(self, x: Tensor, k: int, eps: Tensor | None = None) -> Tensor:
        """L_k per image (nats), Burda et al. 2016 eq. 8; ``eps`` (k, B, L) or fresh draws."""
        levels = self.data.to_levels(x)
        mu, logvar = self.encoder(x)
        if eps is None:
            eps = self._eps(self._eval_generator(levels, salt=2), k, len(x), self.config.latent_dim)
        return iwae_bound(mu, logvar, eps, lambda z: self.log_px_given_z(z, levels), self.decode_chunk(len(x)),
                          self.prior.log_prob)

    def nll(self, x: Tensor) -> Tensor:
        """-ELBO in nats per image of the discrete data (an upper bound on -log P(x))."""
        return -self.elbo(x)[0]

    def nll_estimates(self, x: Tensor) -> list[NLLEstimate]:
        k = self.config.iwae_k
        return [NLLEstimate("ELBO", self.nll(x), params={"samples": self.config.elbo_samples}),
                NLLEstimate("IWAE", -self.iwae(x, k), label=f"IWAE-{k}", params={"k": k})]

    # ------------------------------------------------------------------ training
    def train_step(self, x: Tensor) -> dict[str, float]:
        """One SGVB step (K&W 2014, Algorithm 1) on -(E_q log p(x|z) - beta KL), per sub-pixel."""
        levels = self.data.to_levels(x)
        mu, logvar = (t.float() for t in self.encoder(x))  # the loss in fp32 under bf16 autocast (the nets may not be)
        z = reparameterise(mu, logvar, torch.randn_like(mu))
        recon = self.lik.log_likelihood(self.decoder(z), levels)
        kl = self.prior.kl(mu, logvar, z)
        beta = self.kl_weight()
        dims = self.data.dims
        loss = -(recon - beta * kl).mean() / dims
        # backward, clipping of every network's gradient (the optimiser's parameters), step (loss-scaled in fp16
        # runs): genbench.nn.optim
        optimiser_step(self.optimizers["adam"], loss, grad_clip=self.config.grad_clip or 0.0)
        neg_elbo = float(-(recon - kl).detach().mean()) / dims
        return {"loss": float(loss.detach()), "neg_elbo_nats_per_dim": neg_elbo, "kl_nats": float(kl.detach().mean()), "beta": beta}

    # ------------------------------------------------------------------ sampling
    def sampler_name(self, steps: int | None) -> str:
        return f"decoder-{self.config.sample_mode}"

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Decode z ~ p(z) and draw x ~ p(x|z) (or take its mode); one decoder pass per image."""
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return self.decode(self.prior.sample(n, gen), gen)

    def decode(self, z: Tensor, generator: torch.Generator) -> Tensor:
        """Images in [0, 1] from latents ``z`` (n, L): x ~ p(x|z) with uniforms from ``generator`` when
        ``sample_mode`` is "draw", else the decoder's mode.  ``sample`` decodes prior draws; decoding posterior
        draws z ~ q(z|x) instead separates the decoder's quality from the prior's fit."""
        n = len(z)
        u = torch.rand(n, *self.data.shape, generator=generator) if self.config.sample_mode == "draw" else None
        out = []
        chunk = self.decode_chunk(1)
        for i in range(0, n, chunk):
            params = self.decoder(z[i : i + chunk].to(self.device))
            if u is None:
                levels = self.lik.mode(params)
            else:
                levels = self.lik.sample(params, u[i : i + chunk].to(self.device))
            out.append(self.data.to_unit(levels))
        return torch.cat(out)
