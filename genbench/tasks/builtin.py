"""The built-in tasks: inpainting, outpainting, denoising and colourisation (the lecture's applications)."""
from __future__ import annotations

import torch
from torch import Tensor

from genbench.model import DataSpec, GenerativeModel
from genbench.tasks.base import Corrupted, Task, TaskError, task_seed

__all__ = ["Colourise", "Denoise", "Inpaint", "Outpaint", "builtin_tasks", "luminance"]


class Inpaint(Task):
    """Fill a hole: the masked sub-pixels are unknown, the rest given exactly."""

    name = "inpaint"
    description = "fill the unknown region of a test image (--mask center, left-half, bottom-half, random-pixels:P)"
    default_mask = "center"


class Outpaint(Task):
    """Extend an image outwards: the border is unknown, the centre given."""

    name = "outpaint"
    description = "complete the border around a known centre (--mask border by default)"
    default_mask = "border"


class Denoise(Task):
    """Remove additive Gaussian noise y = x + sigma n (sigma in [0, 1] image units; y is neither clipped nor
    quantised, so diffusion models can match it to a noise level exactly)."""

    name = "denoise"
    description = "remove additive Gaussian noise of std sigma (image units in [0, 1]; default 0.2)"
    capability = "denoise"
    uses_mask = False
    default_mask = None

    @property
    def label(self) -> str:
        return f"sigma={self.sigma:g}"

    def corrupt(self, images: Tensor, seed: int) -> Corrupted:
        gen = torch.Generator().manual_seed(task_seed(seed, self.name, self.label))
        noise = torch.randn(images.shape, generator=gen, dtype=images.dtype)
        known = torch.zeros(len(images), 1, *images.shape[2:], dtype=torch.bool)
        return Corrupted(images + self.sigma * noise, known, images, {"sigma": self.sigma})

    def restore(self, model: GenerativeModel, corrupted: Corrupted, generator: torch.Generator) -> Tensor:
        return model.denoise(corrupted.observed, self.sigma, generator=generator)  # type: ignore[attr-defined]


def luminance(x: Tensor) -> Tensor:
    """The grey-axis component of RGB, the channel mean (n, 1, H, W): the orthogonal projection onto (1,1,1)/sqrt(3)
    up to scale, so known-region replacement on it commutes with an isotropic forward process."""
    return x.mean(1, keepdim=True)


class Colourise(Task):
    """Restore colour from the grey image (channel mean); RGB data only."""

    name = "colourise"
    description = "restore colour from the grey (channel-mean) image; RGB data only"
    capability = "colourise"
    uses_mask = False
    default_mask = None

    @property
    def label(self) -> str:
        return "grey=channel mean"

    def check_data(self, spec: DataSpec) -> None:
        if spec.channels != 3:
            raise TaskError(f"--task colourise needs RGB data (3 channels); this data set has {spec.channels}: "
                            "use e.g. --dataset cifar10")

    def corrupt(self, images: Tensor, seed: int) -> Corrupted:
        grey = luminance(images).expand_as(images).clone()
        known = torch.zeros(len(images), 1, *images.shape[2:], dtype=torch.bool)
        return Corrupted(grey, known, images, {"grey": "channel mean"})

    def restore(self, model: GenerativeModel, corrupted: Corrupted, generator: torch.Generator) -> Tensor:
        return model.colourise(corrupted.observed[:, :1], generator=generator)  # type: ignore[attr-defined]

    def nfe(self, model: GenerativeModel, corrupted: Corrupted) -> int | None:
        fn = getattr(model, "colourise_nfe", None)
        count = None if fn is None else fn()
        return None if count is None else int(count)


def builtin_tasks() -> list[type[Task]]:
    return [Inpaint, Outpaint, Denoise, Colourise]
