"""Standing BatchNorm statistics for the EMA generator (BigGAN, Brock et al. 2019, Appendix C.1).

The weight average itself is ``genbench.nn.ema`` (theta_ema <- beta_t theta_ema + (1 - beta_t) theta after
every generator step, with the warm-up beta_t = min(beta, (1 + t) / (10 + t)); Yazici et al. 2019).  Buffers
(BatchNorm running statistics) are not averaged but re-estimated for the averaged weights with
:func:`recalibrate_batchnorm` before sampling.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def recalibrate_batchnorm(module: nn.Module, latents: list[Tensor]) -> None:
    """Re-estimate BatchNorm running mean/var of ``module`` as plain averages over ``latents`` batches.

    BigGAN (Brock et al. 2019, Appendix C.1, "standing statistics"): the running
    statistics of the raw generator belong to its weights, not to the averaged ones,
    so they are recomputed by forward passes of the EMA generator in training mode
    with momentum=None (cumulative average).  The module is left in eval mode.
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    module.train(True)
    with torch.no_grad():
        for z in latents:
            module(z)
    module.train(False)
    for m, mom in zip(norms, saved):
        m.momentum = mom
