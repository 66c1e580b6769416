from dataclasses import dataclass

import pytest

import genbench_independent
from genbench.config import ConfigError, config_hash, parse_overrides, resolve_config
from genbench.model import DataSpec, GenerativeModel, ModelConfig

Model = genbench_independent.IndependentCategorical
SPEC = DataSpec(1, 8, 8, 17)


@dataclass
class BareConfig(ModelConfig):
    width: int = 7


class Bare(GenerativeModel):
    """A plugin that declares no presets at all."""

    name = "bare"
    Config = BareConfig

    def train_step(self, x):
        return {"loss": 0.0}

    def sample(self, n, *, steps=None, generator=None):
        raise NotImplementedError


def test_defaults_preset_then_overrides():
    cfg = resolve_config(Model, "quick", SPEC, {"alpha": "0.5", "sample_steps": "none,10"})
    assert cfg.max_steps == Model.presets["quick"]["max_steps"]
    assert cfg.alpha == 0.5
    assert cfg.sample_steps == [None, 10]


def test_unknown_field_and_preset_are_one_line_errors():
    with pytest.raises(ConfigError, match="no config field.*alpah"):
        resolve_config(Model, "quick", SPEC, {"alpah": "1"})
    with pytest.raises(ConfigError, match="no preset 'fast'.*quick"):
        resolve_config(Model, "fast", SPEC)
    with pytest.raises(ConfigError, match="cannot read 'many' as"):
        resolve_config(Model, "quick", SPEC, {"max_steps": "many"})


def test_bool_and_optional_coercion():
    cfg = resolve_config(Model, "quick", SPEC, {"max_minutes": "1.5", "max_steps": "None"})
    assert cfg.max_minutes == 1.5 and cfg.max_steps is None


def test_parse_overrides():
    assert parse_overrides(["a=1", " b = x "]) == {"a": "1", "b": "x"}
    with pytest.raises(ConfigError):
        parse_overrides(["novalue"])


def test_config_hash_is_order_independent_and_sensitive():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_runner_fields_are_on_every_config_and_checked():
    cfg = resolve_config(Model, "quick", SPEC, {"sampling_seeds": "3", "sample_every": "50"})
    assert cfg.sampling_seeds == 3 and cfg.sample_every == 50
    default = resolve_config(Model, "quick", SPEC)
    assert default.sampling_seeds == 1 and default.sample_every is None
    with pytest.raises(ConfigError, match="sampling_seeds must be at least 1"):
        resolve_config(Model, "quick", SPEC, {"sampling_seeds": 0})
    with pytest.raises(ConfigError, match="sample_every"):
        resolve_config(Model, "quick", SPEC, {"sample_every": "-5"})


def test_a_model_without_presets_runs_on_its_config_defaults_under_any_preset():
    """A plugin that writes no `presets` gets a working model: the Config defaults, noted, under every name."""
    from genbench.model import NO_PRESETS_NOTE

    for preset in ("quick", "standard", "anything"):
        assert resolve_config(Bare, preset, SPEC) == BareConfig()
        assert Bare.preset_note(preset) == NO_PRESETS_NOTE == "preset not defined by the plugin: Config defaults"
    assert resolve_config(Bare, "quick", SPEC, {"width": "3"}).width == 3
    assert Model.preset_note("quick") is None  # a model with presets still refuses one it does not define
    with pytest.raises(ConfigError, match="no preset 'anything'"):
        resolve_config(Model, "anything", SPEC)


def test_quick_and_standard_cap_the_likelihood_images_on_large_images_for_every_family_alike():
    from genbench.config import LIKELIHOOD_IMAGE_CAPS

    fashion = DataSpec(1, 28, 28, 256)
    for preset in ("quick", "standard"):
        cfg = resolve_config(Model, preset, fashion)
        assert (cfg.nll_val_images, cfg.nll_test_images) == (LIKELIHOOD_IMAGE_CAPS[preset]["nll_val_images"],
                                                             LIKELIHOOD_IMAGE_CAPS[preset]["nll_test_images"])
        assert "nll_test_images" in cfg.to_dict()
    small = resolve_config(Model, "quick", SPEC)  # 8x8 digits: the whole split, and the hash of before the fields
    assert small.nll_val_images is None and small.nll_test_images is None
    assert "nll_val_images" not in small.to_dict() and "nll_test_images" not in small.to_dict()
    assert resolve_config(Model, "tiny", fashion).nll_test_images is None  # tiny: not capped
    assert resolve_config(Model, "quick", fashion, {"nll_test_images": "none"}).nll_test_images is None
    assert resolve_config(Model, "quick", SPEC, {"nll_test_images": "50"}).nll_test_images == 50
    with pytest.raises(ConfigError, match="nll_val_images must be a whole number of images >= 2"):
        resolve_config(Model, "quick", SPEC, {"nll_val_images": "1"})


def test_a_model_without_a_likelihood_gets_no_caps():
    from genbench_gan import GAN

    assert resolve_config(GAN, "quick", DataSpec(1, 28, 28, 256)).nll_test_images is None


def test_standard_on_large_images_gives_every_family_the_same_budget_and_leaves_digits_alone():
    from genbench.config import LARGE_IMAGE_BUDGETS
    from genbench.plugins import get_registry

    registry = get_registry()
    fashion, digits = DataSpec(1, 28, 28, 256), DataSpec(1, 8, 8, 17)
    budget = LARGE_IMAGE_BUDGETS["standard"]
    assert budget == {"max_minutes": 20.0, "precision": "auto"}
    for name in registry.models.names():
        cls = registry.models.get(name)
        cfg = resolve_config(cls, "standard", fashion)
        assert (cfg.max_minutes, cfg.precision) == (20.0, "auto"), name
        # on digits nothing of the budget applies: the family's own preset (and its run ids) as before
        small = resolve_config(cls, "standard", digits)
        assert small.max_minutes == cls.preset_overrides("standard", digits).get("max_minutes", None), name
        assert small.precision == "fp32" and "precision" not in small.to_dict(), name
        # the budget is standard's only: quick keeps the family's own precision (auto only where the precision
        # grids held, tests/bench/test_precision.py)
        assert resolve_config(cls, "quick", fashion).precision == cls.preset_overrides("quick", fashion).get(
            "precision", "fp32"), name
    # --set still wins over the shared budget
    ddpm = registry.models.get("ddpm")
    assert resolve_config(ddpm, "standard", fashion, {"max_minutes": "5", "precision": "fp32"}).max_minutes == 5.0
    assert resolve_config(ddpm, "standard", fashion, {"precision": "fp32"}).precision == "fp32"
    assert resolve_config(Bare, "standard", fashion) == BareConfig()  # no presets: no budget either


def test_large_standard_presets_never_sample_a_thousand_ancestral_steps_at_28x28():
    # 1000-step ancestral sampling costs ~2.2 s per 28x28 image on 2 CPU cores: 37 minutes per 1,000 samples
    from genbench.plugins import get_registry

    registry = get_registry()
    fashion = DataSpec(1, 28, 28, 256)
    for name in ("ddpm", "vdm", "ldm"):
        cls = registry.models.get(name)
        steps = resolve_config(cls, "standard", fashion).sample_steps
        assert None not in steps and all(s <= 100 for s in steps), (name, steps)
        assert None in resolve_config(cls, "standard", DataSpec(1, 8, 8, 17)).sample_steps, name  # digits keeps it
