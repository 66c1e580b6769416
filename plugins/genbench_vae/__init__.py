"""genbench built-in plugin: a convolutional VAE with a discrete decoder (ELBO and IWAE-k bounds).

Modules: ``networks`` (encoder/decoder), ``priors`` (standard normal, learned mixture),
``bounds`` (ELBO, IWAE-k), ``model`` (the GenerativeModel).  The decoder likelihoods
(categorical and discretised logistic over the data's K levels) are ``genbench.nn.discrete``.
Registered through the ``genbench`` entry-point group.
"""
from __future__ import annotations

from genbench import hookimpl

from .model import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig", "genbench_models"]


@hookimpl
def genbench_models() -> list[type]:
    return [VAE]
