"""genbench built-in plugin: gated PixelCNN (van den Oord et al. 2016, "Conditional Image
Generation with PixelCNN Decoders") with exact likelihood, fast autoregressive sampling and
completion.  Modules: ``masks`` (masked convolutions), ``network`` (vertical/horizontal gated
stacks), ``sampler`` (naive and row-cached samplers), ``model`` (the GenerativeModel)."""
from __future__ import annotations

from genbench import hookimpl
from genbench_pixelcnn.model import PixelCNN, PixelCNNConfig

__all__ = ["PixelCNN", "PixelCNNConfig", "genbench_models"]


@hookimpl
def genbench_models() -> list[type]:
    return [PixelCNN]
