"""compile_sampler: which cells compile their sampler's network (counted by hand), the run id of an "off" config is
the one it always had, a family without a named sampling network is refused before any work, and a compiled
cell's rows say so and keep the compile out of images/s (torch.compile replaced by a slow identity here; the real
compile is tested in tests/nn/test_compiled.py)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

import genbench.nn.compiled as compiled_mod
from genbench.cli import main
from genbench.config import resolve_config
from genbench.plugins import build_registry, using_registry
from genbench.runner import CellSpec, Runner
from genbench.runner.compiled_sampling import (COMPILE_MIN_EVALUATIONS, check_compile_sampler, compiles_sampler,
                                               planned_evaluations, planned_sampler_calls)


FAMILIES = build_registry(autoload=True)  # the installed families (DDPM, VAE, ...)


class Steps:
    """A model whose nfe is its steps (None: 1000), as the DDPM's Algorithm 2 / DDIM."""

    compiled_sampling_modules = ("ema",)

    def nfe(self, steps):
        return 1000 if steps is None else steps


def cfg(**kw):
    base = dict(n_samples=1000, sample_batch_size=500, sample_steps=[None, 50, 20], sampling_seeds=1,
                compile_sampler="auto")
    return SimpleNamespace(**{**base, **kw})


def test_planned_calls_and_evaluations_are_counted_per_setting_batch_and_seed():
    assert planned_sampler_calls(Steps(), cfg()) == 2 * (1000 + 50 + 20)
    assert planned_sampler_calls(Steps(), cfg(n_samples=1001)) == 3 * 1070  # a smaller last batch is a batch
    assert planned_sampler_calls(Steps(), cfg(sampling_seeds=3)) == 3 * 2 * 1070
    assert planned_sampler_calls(Steps(), cfg(sampling_seeds=3), sampling_seeds=1) == 2 * 1070
    assert planned_evaluations(Steps(), cfg()) == 1000 * 1070
    assert planned_evaluations(Steps(), cfg(sample_steps=[50], sampling_seeds=2)) == 2 * 1000 * 50


def test_auto_compiles_from_the_threshold_on_and_off_do_what_they_say():
    m = Steps()
    at = cfg(sample_steps=[COMPILE_MIN_EVALUATIONS // 1000])
    below = cfg(sample_steps=[COMPILE_MIN_EVALUATIONS // 1000 - 1])
    assert compiles_sampler(m, at) and not compiles_sampler(m, below)
    assert compiles_sampler(m, cfg(sample_steps=[1], compile_sampler="on"))
    assert not compiles_sampler(m, cfg(compile_sampler="off"))
    no_net = SimpleNamespace(nfe=m.nfe, compiled_sampling_modules=())
    assert not compiles_sampler(no_net, cfg(compile_sampler="on"))


def test_the_presets_compile_where_the_calls_pay(digits_spec):
    """quick DDPM (1,000 DDIM-50 images) stays eager; the paper preset (50,000 images, Algorithm 2) compiles."""
    ddpm = FAMILIES.models.get("ddpm")
    quick = resolve_config(ddpm, "quick", digits_spec, {"compile_sampler": "auto"})
    paper = resolve_config(ddpm, "paper", digits_spec)
    model = SimpleNamespace(nfe=lambda s: 1000 if s is None else s, compiled_sampling_modules=("ema", "net"))
    assert resolve_config(ddpm, "quick", digits_spec).compile_sampler == "off"
    assert not compiles_sampler(model, quick) and planned_evaluations(model, quick) == 50_000
    assert paper.compile_sampler == "auto" and compiles_sampler(model, paper)


def test_bad_values_and_unsupported_families_are_refused_in_one_line():
    registry = FAMILIES
    assert check_compile_sampler("AUTO", registry.models.get("ddpm")) == "auto"
    with pytest.raises(ValueError, match="compile_sampler must be one of off, on, auto, got 'yes'"):
        check_compile_sampler("yes", registry.models.get("ddpm"))
    assert check_compile_sampler("auto", registry.models.get("vae")) == "auto"  # auto: simply off there
    with pytest.raises(ValueError, match="model 'vae' cannot compile its sampler"):
        check_compile_sampler("on", registry.models.get("vae"))


def test_the_command_line_refuses_on_for_a_family_without_a_sampling_network(tmp_path):
    with using_registry(FAMILIES):
        res = CliRunner().invoke(main, ["run", "--models", "vae", "--preset", "tiny", "--set", "compile_sampler=on",
                                        "--out", str(tmp_path), "--no-progress", "--no-report"])
    assert res.exit_code != 0 and "cannot compile its sampler" in res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_off_hashes_as_before_the_field_existed(tmp_path):
    runner = Runner(tmp_path, registry=FAMILIES, device="cpu", progress=False)
    plain = runner.plan(CellSpec("ddpm", "digits", 0, "tiny", {}))
    off = runner.plan(CellSpec("ddpm", "digits", 0, "tiny", {"compile_sampler": "off"}))
    auto = runner.plan(CellSpec("ddpm", "digits", 0, "tiny", {"compile_sampler": "auto"}))
    assert "compile_sampler" not in plain.identity["config"]
    assert plain.run_id == off.run_id != auto.run_id


def test_the_model_swaps_in_the_compiled_copy_only_inside_the_block(digits_spec, monkeypatch):
    monkeypatch.setattr(compiled_mod.torch, "compile", lambda m, **kw: m)
    cls = FAMILIES.models.get("ddpm")
    model = cls(resolve_config(cls, "tiny", digits_spec), digits_spec)
    ema = model.averaged["ema"]
    with model.compiled_sampling() as frozen:
        assert model.sampling_net is frozen and frozen.eager is not ema
    assert model.averaged["ema"] is ema
    with pytest.raises(RuntimeError, match="planted"), model.compiled_sampling():
        raise RuntimeError("planted")
    assert model.averaged["ema"] is ema and model.sampling_net is ema


def test_a_nested_sampling_network_is_swapped_by_its_dotted_path(digits_spec, monkeypatch):
    """The VDM's sampler calls the EMA's noise model (``ema.eps``), not the EMA pair itself."""
    monkeypatch.setattr(compiled_mod.torch, "compile", lambda m, **kw: m)
    cls = FAMILIES.models.get("vdm")
    model = cls(resolve_config(cls, "tiny", digits_spec), digits_spec)
    ema = model.averaged["ema"]
    eps = ema.eps
    with model.compiled_sampling() as frozen:
        assert model.sampling_net is ema and ema.eps is frozen
        with torch.inference_mode():
            x = model.sample(3, steps=2, generator=torch.Generator().manual_seed(0))
    assert ema.eps is eps and frozen.calls == 2
    with torch.inference_mode():
        assert torch.equal(x, model.sample(3, steps=2, generator=torch.Generator().manual_seed(0)))


def test_a_compiled_cell_says_so_and_keeps_the_compile_out_of_images_per_second(tmp_path, cache_dir, monkeypatch):
    """torch.compile replaced by an identity whose first call sleeps 1.5 s (the "compile"): the compile row says
    about 1.5 s, the first setting's images/s does not carry it, and samples equal an eager cell's (the identity
    computes what eager does)."""
    def fake_compile(module, **kwargs):
        state = {"first": True}

        def run(*args):
            if state.pop("first", False):
                time.sleep(1.5)
            return module(*args)

        return run

    monkeypatch.setattr(compiled_mod.torch, "compile", fake_compile)
    runner = Runner(tmp_path, registry=FAMILIES, device="cpu", progress=False, cache_dir=cache_dir,
                    extractors=["random-cnn"])
    tiny = {"max_steps": 2, "n_samples": 20, "sample_batch_size": 20, "eval_every": 2, "sample_steps": [None, 5]}
    on = runner.run_cell(CellSpec("ddpm", "digits", 0, "tiny", {**tiny, "compile_sampler": "on"}))
    off = runner.run_cell(CellSpec("ddpm", "digits", 0, "tiny", tiny))
    assert on.state == off.state == "done", (on.error, off.error)
    compile_rows = [r for r in on.rows if r["metric"] == "sampler_compile_seconds"]
    assert len(compile_rows) == 1 and 1.4 < compile_rows[0]["value"] < 3.0
    assert not [r for r in off.rows if r["metric"] == "sampler_compile_seconds"]
    ips = {r["sampler"]: r for r in on.rows if r["metric"] == "images_per_second"}
    assert set(ips) == {"ancestral-20", "DDIM-5"}
    for r in ips.values():
        assert '"compiled_sampler": true' in r["details"]
    first = ips["ancestral-20"]["value"]
    assert 20 / first < 1.0  # 20 images of a 20-step tiny U-Net take well under the planted 1.5 s
    off_ips = [r for r in off.rows if r["metric"] == "images_per_second"]
    assert all('"compiled_sampler": false' in r["details"] for r in off_ips)
    for name in ("ancestral-20.npz", "DDIM-5.npz"):
        a = (on.run_dir / "samples" / name).read_bytes()
        b = (off.run_dir / "samples" / name).read_bytes()
        assert a == b, name
