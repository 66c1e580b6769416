"""Shared helpers for the latent-diffusion tests: one torch thread (tiny ops run faster so on a shared CPU)."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
