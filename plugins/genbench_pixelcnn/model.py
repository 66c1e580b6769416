"""The gated PixelCNN as a genbench model: exact likelihood, autoregressive sampling, completion.

Likelihood (van den Oord et al. 2016a, eq. 1-2): with the network's K-way softmax per sub-pixel,

    -log P(x) = - sum_{i, c} log softmax(logits_{c,i}(x_{<(i,c)}))[x_{c,i}]     (nats per image)

which is exact for the discrete data (a product of normalised categoricals over the K levels).
Training minimises its mean over a batch (divided by D so the loss reads in nats/dim).

With ``ema_decay`` > 0 the likelihood, samples and completions come from a Polyak (exponential moving)
average of the weights, as PixelCNN++ evaluates its models (Salimans et al. 2017, Sec. 3): the average
of a noisy, quickly overfitting trajectory is a better model than any one point of it.  The average is
``genbench.nn.ema`` without warm-up whose first update copies the weights (the arithmetic of
``torch.optim.swa_utils.AveragedModel`` with its EMA function); it lives in ``averaged["ema"]``.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from genbench import DataSpec, GenerativeModel, ModelConfig
from genbench.nn.ema import averaged_copy, ema_decay, ema_update
from genbench.nn.optim import optimiser_step
from genbench.tasks.masks import is_raster_prefix
from genbench.tasks.options import option
from genbench_pixelcnn import completion
from genbench_pixelcnn.masks import freeze_masks
from genbench_pixelcnn.network import GatedPixelCNN
from genbench_pixelcnn.sampler import sample_fast, sample_naive

SAMPLERS = {"fast": sample_fast, "naive": sample_naive}


@dataclass
class PixelCNNConfig(ModelConfig):
    """Gated PixelCNN hyper-parameters (2016b uses 7x7 first layer, 3x3 gated layers; sizes scaled down)."""

    channels: int = 64            # features per stack (split into C colour groups)
    layers: int = 8               # gated layers, the first with mask A
    kernel_size: int = 3          # gated layers' kernel (vertical (k//2+1) x k, horizontal 1 x (k//2+1))
    first_kernel_size: int = 7    # first layer's kernel
    head_channels: int = 256      # hidden 1x1 layer of the output head
    dropout: float = 0.0          # on each gated layer's output before its residual add (training only)
    ema_decay: float = 0.0        # Polyak average of the weights used for nll / sampling (0 = off)
    lr: float = 1e-3              # Adam
    weight_decay: float = 0.0     # AdamW decoupled weight decay
    lr_decay: float = 1.0         # multiply the learning rate by this after every step
    grad_clip: float = 1.0        # max gradient norm (0 = off)
    sampler: str = "fast"         # "fast" (row-cached) or "naive" (full pass per sub-pixel); same draws
    sample_threads: int = 1       # torch CPU threads while sampling: thousands of small calls, where
                                  # thread synchronisation costs more than it gains (0 = leave as is)
    batch_size: int = 64
    max_steps: int | None = 2000
    eval_every: int = 100
    n_samples: int = 1000
    sample_batch_size: int = 500


class PixelCNN(GenerativeModel):
    """Gated PixelCNN (no blind spot) with a K-way softmax per sub-pixel; exact likelihood."""

    name = "pixelcnn"
    description = "gated PixelCNN (van den Oord et al. 2016): exact likelihood, autoregressive sampling, completion"
    Config = PixelCNNConfig
    likelihood = "exact"
    supports_steps = False
    capabilities = frozenset({"complete"})  # exact for raster-order-prefix masks, else resampling (completion.py)
    task_options = completion.TASK_OPTIONS  # --task-set particles=K
    presets = {
        # contract/unit tests: a few seconds on each contract spec, CPU
        "tiny": {"channels": 6, "layers": 2, "kernel_size": 3, "first_kernel_size": 3, "head_channels": 6,
                 "max_steps": 2, "eval_every": 1, "batch_size": 8, "n_samples": 8, "sample_batch_size": 8,
                 "ema_decay": 0.9},
        # a few minutes on 2 CPU cores; bf16 where the hardware multiplies it natively (over seeds 0-2 on digits: FID
        # 19.0 +- 12 against 18.1 +- 14 in fp32, exact bits/dim 1.789 against 1.791, the step 1.35x faster;
        # bench/results/precision_digits.md), the exact likelihood always in fp32
        "quick": {"channels": 32, "layers": 5, "head_channels": 64, "max_steps": 1500, "max_minutes": 3.0,
                  "eval_every": 100, "precision": "auto"},
        # the benchmark setting (digits: ~6 minutes of training on 2 CPU cores).  Without dropout the
        # test likelihood peaks at step ~500 and then overfits; dropout 0.5 and a learning rate halving
        # every ~1000 steps move the validation optimum to ~1500 steps (1.752 vs 1.790 bits/dim), where
        # the samples are better too (FID ~3.3x the floor vs ~4.6x).  A short-horizon weight average
        # (EMA 0.99, ~100 steps) smooths the last steps' noise: validation 1.743-1.747 and FID ~2.6-3.0x
        # at the optimum on two seeds (a GPU sweep of 28 configurations, bench/grids/pixelcnn_curve.toml); 0.998 averaged too
        # far back and hurt the samples
        "standard": {"channels": 64, "layers": 8, "head_channels": 256, "max_steps": 2000, "max_minutes": 6.0,
                     "eval_every": 100, "dropout": 0.5, "lr_decay": 0.9993, "ema_decay": 0.99},
    }

    #: per-preset overrides for large images (``genbench.model.large_images``): at 28x28 the shared 20-minute bf16
    #: budget is ~950 steps of batch 64 (1.27 s each on 2 cores), about one epoch of Fashion-MNIST's 55,000 images:
    #: not the overfitting regime of digits' 1,197 images that dropout 0.5 answers, so no dropout
    large_presets: dict[str, dict[str, Any]] = {
        "standard": {"dropout": 0.0, "eval_every": 200},
    }

    def __init__(self, config: PixelCNNConfig, data: DataSpec, device: torch.device | str = "cpu") -> None:
        super().__init__(config, data, device)
        if config.sampler not in SAMPLERS:
            raise ValueError(f"pixelcnn: sampler must be one of {sorted(SAMPLERS)}, got {config.sampler!r}")
        if not 0.0 <= config.ema_decay < 1.0:
            raise ValueError(f"pixelcnn: ema_decay must be in [0, 1) (0 = no weight average), got {config.ema_decay}")
        self.net = GatedPixelCNN(
            data.channels, data.levels, channels=config.channels, layers=config.layers,
            kernel_size=config.kernel_size, first_kernel_size=config.first_kernel_size,
            head_channels=config.head_channels, dropout=config.dropout,
        ).to(self.device)
        self.networks = {"net": self.net}
        if config.ema_decay > 0:
            self.averaged = {"ema": averaged_copy(self.net)}
        self.ema_updates = 0
        # foreach: one fused update over all tensors (bit-identical to the per-tensor loop, faster on a CPU)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                     foreach=True)
        self.optimizers = {"opt": self.opt}
        self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma=config.lr_decay)

    # --- likelihood ---------------------------------------------------------------
    @property
    def eval_net(self) -> GatedPixelCNN:
        """The network that scores and samples: the weight average when ``ema_decay`` > 0, else the trained one."""
        return self.averaged.get("ema", self.net)  # type: ignore[return-value]

    def log_probs(self, x: Tensor) -> Tensor:
        """log p(x_{c,i,j} = k | x_{<(c,i,j)}) for every level k: (B, C, K, H, W), normalised over K."""
        return F.log_softmax(self.eval_net(x), dim=2)

    def nll_from_logits(self, logits: Tensor, x: Tensor) -> Tensor:
        """-log P(x) (nats per image) = -sum over sub-pixels of the log-softmax at the observed level."""
        target = self.data.to_levels(x)  # (B, C, H, W)
        return F.cross_entropy(logits.permute(0, 2, 1, 3, 4), target, reduction="none").flatten(1).sum(1)

    def nll(self, x: Tensor) -> Tensor:
        """Exact -log P(x) in nats per image of the discrete data (2016a, eq. 1-2), under ``eval_net``."""
        return self.nll_from_logits(self.eval_net(x), x)

    def train_step(self, x: Tensor) -> dict[str, float]:
        nats = self.nll_from_logits(self.net(x), x).mean() / self.data.dims
        # backward, clipping, step (loss-scaled in fp16 runs): genbench.nn.optim
        optimiser_step(self.opt, nats, self.net.parameters(), grad_clip=self.config.grad_clip)
        self.sched.step()
        if "ema" in self.averaged:  # the first update copies the weights (decay 0), then a fixed decay
            decay = ema_decay(self.ema_updates, self.config.ema_decay, warmup=False) if self.ema_updates else 0.0
            ema_update(self.averaged["ema"], self.net, decay)
            self.ema_updates += 1
        loss = float(nats.detach())
        return {"loss": loss, "bits_per_dim": loss / math.log(2.0)}

    # --- sampling -------------------------------------------------------------------
    def sampler_name(self, steps: int | None) -> str:
        return f"autoregressive-{self.config.sampler}"

    def nfe(self, steps: int | None) -> int:
        """One network evaluation per sub-pixel: C*H*W."""
        return self.data.dims

    def sample(self, n: int, *, steps: int | None = None, generator: torch.Generator | None = None) -> Tensor:
        """n images, one sub-pixel at a time (NFE = C*H*W per image)."""
        with self._sampling():
            return SAMPLERS[self.config.sampler](self.eval_net, n, self.data.shape, generator, self.device)

    def complete(self, x: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Inpainting/completion: keep the sub-pixels of ``x`` where ``mask`` is True, sample the rest.

        ``x`` (n, C, H, W) values in [0, 1]; ``mask`` bool, broadcastable to ``x`` (e.g. (1, 1, H, W)
        with the top rows True).  When the known sub-pixels are a raster-order prefix (e.g. the bottom half
        unknown) the unknown ones are drawn from p(x_d | x_{<d}) in raster order: exact conditional samples.
        Otherwise ``genbench_pixelcnn.completion.importance_complete``: K = ``particles`` such proposals per
        image (``--task-set particles=K``, default 16), one kept with probability proportional to the known
        sub-pixels' likelihood given it (sampling-importance-resampling: consistent as K grows, not exact).
        """
        known = self.data.to_unit(self.data.to_levels(x))
        mask = mask.to(torch.bool).expand_as(x)
        run = SAMPLERS[self.config.sampler]

        def sample(values: Tensor, m: Tensor, gen: torch.Generator | None) -> Tensor:
            return run(self.eval_net, len(values), self.data.shape, gen, self.device, known=values, mask=m)

        with self._sampling():
            return completion.importance_complete(sample, self.log_probs, known.to(self.device), mask.to(self.device),
                                                  self.data.levels, self._particles(), generator)

    def _particles(self) -> int:
        return option(self, "particles", completion.PARTICLES)

    def _full_mask(self, known_mask: Tensor) -> Tensor:
        return known_mask.to(torch.bool).expand(len(known_mask), self.data.channels, *known_mask.shape[2:])

    def restoration_details(self, capability: str, known_mask: Tensor) -> dict[str, Any]:
        """The task rows' ``method`` (and K when resampling), for ``genbench.tasks``.  Every mask is completed
        (``completion_unsupported`` stays None): exactly when the known part is a raster-order prefix, else by
        importance resampling."""
        k, mask = self._particles(), self._full_mask(known_mask)
        out: dict[str, Any] = {"method": completion.completion_method(mask, k)}
        if not is_raster_prefix(mask):
            out["particles"] = k
        return out

    def completion_nfe(self, mask: Tensor) -> int:
        """Network evaluations per image of ``complete(x, mask)``: the sub-pixels unknown in some image, times K
        plus K scoring passes when the mask is not a raster-order prefix."""
        mask = mask.to(torch.bool)
        mask = mask.expand(torch.broadcast_shapes(mask.shape, (1, *self.data.shape)))
        return completion.completion_nfe(int((~mask).any(0).sum()), mask, self._particles())

    @contextmanager
    def _sampling(self) -> Iterator[None]:
        """Inference mode, masked weights computed once, and ``sample_threads`` CPU threads."""
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and self.config.sample_threads > 0:
            torch.set_num_threads(self.config.sample_threads)
        try:
            with torch.inference_mode(), freeze_masks(self.eval_net):
                yield
        finally:
            torch.set_num_threads(threads)

    def extra_state(self) -> dict[str, Any]:
        return {"scheduler": self.sched.state_dict(), "ema_updates": int(self.ema_updates)}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "scheduler" in state:
            self.sched.load_state_dict(state["scheduler"])
        self.ema_updates = int(state.get("ema_updates", 0))
