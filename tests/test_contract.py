"""The one shared contract test, run for every model that comes in through the entry-point group."""
from __future__ import annotations

import pytest

from genbench.plugins import build_registry
from genbench.testing import CONTRACT_SPECS, check_model_contract

REGISTRY = build_registry(autoload=True)
MODELS = REGISTRY.models.names()


def test_builtin_families_are_registered():
    assert {"independent", "ddpm", "vae", "gan", "pixelcnn"} <= set(MODELS)


@pytest.mark.parametrize("spec_name", list(CONTRACT_SPECS))
@pytest.mark.parametrize("model_name", MODELS)
def test_model_contract(model_name: str, spec_name: str) -> None:
    check_model_contract(REGISTRY.models.get(model_name), CONTRACT_SPECS[spec_name])
