"""The smallest complete genbench model plugin: a per-sub-pixel Bernoulli model fitted by a running mean.

No presets (it runs on its Config defaults under any preset), no optimiser, no likelihood, one default sampler.
"""
import torch
from torch import nn

from genbench import GenerativeModel, hookimpl


class RunningMean(nn.Module):
    """The mean image seen so far, as buffers: checkpointed with the model, 0 trainable parameters."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("mean", torch.full(shape, 0.5))
        self.register_buffer("batches", torch.zeros(()))


class Mine(GenerativeModel):
    name = "mine"
    description = "each sub-pixel on with the probability the training images have it on"

    def __init__(self, config, data, device="cpu"):
        super().__init__(config, data, device)       # sets self.config, self.data, self.device, self.step
        self.networks = {"mean": RunningMean(data.shape).to(self.device)}  # the model moves its own modules

    def train_step(self, x):                          # x: (B, C, H, W) on self.device, values k/(K-1)
        m = self.networks["mean"]
        m.batches += 1
        m.mean += (x.mean(0) - m.mean) / m.batches
        return {"loss": float(((x - m.mean) ** 2).mean())}   # floats (or 0-dim tensors); "loss" is required

    def sample(self, n, *, steps=None, generator=None):      # (n, C, H, W) in [0, 1], on any device
        u = torch.rand(n, *self.data.shape, generator=generator)  # the generator is a CPU one
        return (u < self.networks["mean"].mean.cpu()).float()


@hookimpl
def genbench_models():
    return [Mine]
