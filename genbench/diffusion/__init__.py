"""The diffusion library (Ho et al. 2020; DDIM, Song et al. 2021) that the pixel and latent diffusion plugins
share.  Every function works on any tensor shape (B, ...): pixels or latents.

  schedule   beta schedules and the closed-form maths: q_sample, posterior, reverse and DDIM steps
  samplers   Algorithm 2 and DDIM loops over any epsilon-predicting callable; their names and NFE
  unet       the noise-prediction U-Net and where its attention goes
  training   Algorithm 1 (L_simple) and one optimiser step of it
  decoders   the bound's last term L_0: discretised Gaussian (pixels) or Gaussian density (latents)
  vlb        the variational bound (eq. 5), every term or stratified in t, with L_0 passed in
  continuous continuous-time diffusion on a log-SNR schedule gamma(t) (Kingma et al. 2021): q, the prior,
             the discrete decoder at gamma(0), the loss L_inf (eq. 17), the bound (eq. 11), ancestral sampling
  learned_schedule
             the monotone learned gamma(t) with learned end points, trained for a low-variance bound
  learned_variance
             Improved DDPM (Nichol & Dhariwal 2021): Sigma_theta between beta and beta~ (eq. 15), L_hybrid (eq. 16)
  importance importance sampling of t for L_vlb: p_t proportional to sqrt(E[L_t^2]) (their section 3.3)
"""
from __future__ import annotations

from .continuous import continuous_bound, low_discrepancy_times
from .decoders import L0Fn, discretised_gaussian_nll, gaussian_nll
from .importance import ImportanceSampler
from .learned_schedule import MonotoneGamma, ScheduleDraw
from .learned_variance import hybrid_loss, hybrid_step, interpolated_log_variance
from .samplers import (
    STRIDED_SAMPLERS, ancestral_sample, ddim_sample, ddim_timesteps, sampler_name, sampler_nfe,
    strided_ancestral_sample,
)
from .schedule import Schedule
from .training import denoising_loss, denoising_step
from .unet import UNet, UNetConfig, lowest_resolution
from .vlb import vlb_stratified, vlb_terms

__all__ = [
    "ImportanceSampler", "L0Fn", "MonotoneGamma", "Schedule", "ScheduleDraw", "UNet", "UNetConfig", "ancestral_sample",
    "continuous_bound", "ddim_sample", "ddim_timesteps", "denoising_loss", "denoising_step", "hybrid_loss", "hybrid_step",
    "interpolated_log_variance",
    "discretised_gaussian_nll", "gaussian_nll", "low_discrepancy_times", "lowest_resolution", "sampler_name",
    "sampler_nfe", "STRIDED_SAMPLERS", "strided_ancestral_sample", "vlb_stratified", "vlb_terms",
]
