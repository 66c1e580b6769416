"""Nearest-neighbour distances from one set of vectors to another, in blocks (memory independent of the sizes).

d(q, K) = min_k ||q - k||_2.  Candidates are found with ||q||^2 + ||k||^2 - 2 q.k in float64 on blocks of
queries x keys (a 1000 x 8192 block is 64 MiB), then each query's distance to its nearest key is recomputed
directly from the difference vector, so the returned distance has no cancellation error (an exact copy is at
distance exactly 0).  With integer-valued inputs (image levels) every block product is an exact integer in
float64, so the candidate search is exact as well.
"""
from __future__ import annotations

import torch
from torch import Tensor

QUERY_BLOCK = 1024
KEY_BLOCK = 8192


def nearest(queries: Tensor, keys: Tensor, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """(distance to the nearest key, its index) for every query row; rows are flattened, computed in float64
    on ``device``, returned on the CPU."""
    if len(keys) == 0:
        raise ValueError("nearest neighbours need at least one key (an empty training split?)")
    q_all = queries.reshape(len(queries), -1).to(device, torch.float64)
    k_all = keys.reshape(len(keys), -1).to(device)  # kept in its own dtype (uint8 levels); blocks become float64
    if q_all.shape[1] != k_all.shape[1]:
        raise ValueError(f"queries have {q_all.shape[1]} dimensions but keys have {k_all.shape[1]}")
    blocks = [(j, k_all[j : j + KEY_BLOCK].to(torch.float64)) for j in range(0, len(k_all), KEY_BLOCK)] \
        if len(k_all) * k_all.shape[1] <= 2**25 else None  # small key sets: convert once
    dist, index = [], []
    for i in range(0, len(q_all), QUERY_BLOCK):
        q = q_all[i : i + QUERY_BLOCK]
        q_sq = q.square().sum(1, keepdim=True)
        best = torch.full((len(q),), float("inf"), dtype=torch.float64, device=q.device)
        arg = torch.zeros(len(q), dtype=torch.int64, device=q.device)
        for j, k in blocks or ((j, k_all[j : j + KEY_BLOCK].to(torch.float64)) for j in range(0, len(k_all), KEY_BLOCK)):
            d2 = q_sq + k.square().sum(1)[None] - 2 * q @ k.T
            val, idx = d2.min(1)
            better = val < best
            best = torch.where(better, val, best)
            arg = torch.where(better, idx + j, arg)
        dist.append((q - k_all[arg].to(torch.float64)).norm(dim=1).cpu())
        index.append(arg.cpu())
    return torch.cat(dist), torch.cat(index)
