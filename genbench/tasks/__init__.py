"""Restoration tasks beside unconditional generation: inpainting, outpainting, denoising, colourisation.

  base.py        the Task protocol (corrupt deterministically from a seed, restore through a model capability)
  masks.py       --mask names and their parsing (one-line errors)
  builtin.py     the built-in tasks (registered by plugin.py through the ``genbench_tasks`` hook)
  metrics.py     PSNR/MSE on the unknown and known regions, class agreement, diversity
  latent_fit.py  the shared latent optimiser of VAE and GAN completion
  run.py         a task on a finished cell: load its checkpoint, restore, score, write rows and a grid
"""
from genbench.tasks.base import Corrupted, Task, TaskError
from genbench.tasks.masks import MaskError, MaskSpec, parse_mask

__all__ = ["Corrupted", "MaskError", "MaskSpec", "Task", "TaskError", "parse_mask"]
