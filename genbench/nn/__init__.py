"""Building blocks shared by the model families (the plugins depend on this package, never on each other).

  ema        exponential moving average of weights: one decay rule, one update
  lr         the warm-up + cosine learning-rate rule
  seeding    content-seeded evaluation generators (reproducible likelihood estimates)
  discrete   likelihoods over the K levels of discrete data (categorical, discretised logistic)
  layers     small layers used by several networks (group_norm)
  compiled   a frozen compiled copy of a network for a sampler's many calls (torch.compile with freezing)
  optim      the optimiser step every family takes (backward, clipping, update; loss scaling in fp16 runs)
"""
from __future__ import annotations
