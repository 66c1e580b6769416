"""Grid files: parsing, the cells they resolve to, one-line errors, and every grid under bench/grids/."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from genbench.cli import main
from genbench.config import parse_overrides, resolve_config
from genbench.grid import GridError, load_grid, parse_grid
from genbench.plugins import build_registry
from genbench.runner import CellSpec

REGISTRY = build_registry(autoload=True)
GRIDS = Path(__file__).resolve().parent.parent / "bench" / "grids"

EXAMPLE = """
models = ["ddpm", "vae"]
datasets = ["digits"]
seeds = "0-2"
preset = "standard"
extractors = ["classifier"]
out = "reports-standard"
[set]
n_samples = 500
ddim_eta = 0.5
[set.ddpm]
sampling_seeds = 3
sample_steps = ["none", 50]
"""


def cells_of(text: str) -> list[CellSpec]:
    return parse_grid(text, "g.toml").cell_specs(REGISTRY)


def test_example_parses_into_its_fields():
    g = parse_grid(EXAMPLE, "example.toml")
    assert g.models == ["ddpm", "vae"] and g.datasets == ["digits"] and g.seeds == [0, 1, 2]
    assert g.preset == "standard" and g.extractors == ["classifier"] and g.out == "reports-standard"
    assert g.common_overrides == {"n_samples": 500, "ddim_eta": 0.5}
    assert g.model_overrides == {"ddpm": {"sampling_seeds": 3, "sample_steps": ["none", 50]}}
    assert g.source == EXAMPLE and g.path == "example.toml"


def test_cells_nest_datasets_models_seeds_and_restrict_common_overrides():
    cells = cells_of(EXAMPLE)
    assert [(c.model, c.seed) for c in cells] == [("ddpm", 0), ("ddpm", 1), ("ddpm", 2), ("vae", 0), ("vae", 1), ("vae", 2)]
    assert all(c.dataset == "digits" and c.preset == "standard" for c in cells)
    # ddim_eta is a DDPM field only: the VAE cells do not get it; values read as --set reads them
    assert cells[0].overrides == {"n_samples": "500", "ddim_eta": "0.5", "sampling_seeds": "3", "sample_steps": "none,50"}
    assert cells[3].overrides == {"n_samples": "500"}


def test_overrides_resolve_like_the_same_set_flags():
    """A grid and `--set` on the command line give the same config, hence the same run id."""
    cell = cells_of('models = ["ddpm"]\n[set.ddpm]\nmax_minutes = 3\nmax_steps = "none"\nsample_steps = [50]\n'
                    "lr_decay = false\n")[0]
    ddpm = REGISTRY.models.get("ddpm")
    spec = REGISTRY.datasets.get("digits").spec
    from_grid = resolve_config(ddpm, "quick", spec, cell.overrides)
    from_cli = resolve_config(ddpm, "quick", spec, parse_overrides(
        ["max_minutes=3", "max_steps=none", "sample_steps=50", "lr_decay=false"]))
    assert from_grid == from_cli
    assert from_grid.max_minutes == 3.0 and isinstance(from_grid.max_minutes, float)
    assert from_grid.max_steps is None and from_grid.sample_steps == [50] and from_grid.lr_decay is False
    none_first = cells_of('models = ["ddpm"]\n[set.ddpm]\nsample_steps = ["none", 50]\n')[0]
    assert resolve_config(ddpm, "quick", spec, none_first.overrides).sample_steps == [None, 50]


def test_all_models_and_seed_forms():
    g = parse_grid('models = "all"\nseeds = "0-1,5"\n')
    assert g.seeds == [0, 1, 5]
    assert [c.model for c in g.cell_specs(REGISTRY)] == [m for m in REGISTRY.models.names() for _ in range(3)]
    assert parse_grid('models = ["gan"]\nseeds = 4').seeds == [4]
    assert parse_grid('models = "gan, vae"').models == ["gan", "vae"]
    assert parse_grid('models = ["gan"]').datasets == ["digits"] and parse_grid('models = ["gan"]').preset == "quick"


def test_resolved_is_plain_json_with_the_file_hash():
    import json

    r = parse_grid(EXAMPLE, "example.toml").resolved()
    assert json.loads(json.dumps(r)) == r
    assert r["seeds"] == [0, 1, 2] and r["models"] == ["ddpm", "vae"] and r["path"] == "example.toml"
    assert r["model_overrides"] == {"ddpm": {"sampling_seeds": 3, "sample_steps": ["none", 50]}}
    assert len(r["sha256"]) == 64
    assert parse_grid('models = "all"').resolved()["models"] == "all"


def test_a_command_line_may_narrow_the_models():
    """[set.<model>] for a registered model outside the grid (e.g. after --models) is ignored, not an error."""
    g = dataclasses.replace(parse_grid(EXAMPLE.replace("ddim_eta = 0.5", "")), models=["vae"])
    assert [(c.model, c.overrides) for c in g.cell_specs(REGISTRY)] == [("vae", {"n_samples": "500"})] * 3
    with pytest.raises(GridError, match="'ddim_eta' is a config field of none of the models vae"):
        dataclasses.replace(parse_grid(EXAMPLE), models=["vae"]).cell_specs(REGISTRY)


@pytest.mark.parametrize("text, message", [
    ('models = ["ddpm"', "not valid TOML"),
    ('model = ["ddpm"]', "unknown key 'model' (did you mean 'models'?)"),
    ('datasets = ["digits"]', "needs `models"),
    ('models = []', "`models` is empty"),
    ('models = ["ddpm", "ddpm"]', "names something twice"),
    ('models = [1]', "must be a list of names"),
    ('models = ["ddpm"]\nseeds = "a-b"', "`seeds` must be"),
    ('models = ["ddpm"]\nseeds = [-1]', "`seeds` must be"),
    ('models = ["ddpm"]\nseeds = true', "`seeds` must be"),
    ('models = ["ddpm"]\npreset = 3', "`preset` must be a non-empty string"),
    ('models = ["ddpm"]\nset = 3', "`set` must be a table"),
    ('models = ["ddpm"]\n[set.ddpm.inner]\nx = 1', "[set.ddpm] inner is a table"),
    ('models = ["ddpm"]\n[set]\nwhen = 1979-05-27', "is not a string, number, boolean or flat list"),
])
def test_bad_files_are_one_line_errors(text, message):
    with pytest.raises(GridError) as info:
        parse_grid(text, "bad.toml")
    assert message in str(info.value) and str(info.value).startswith("bad.toml: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, message", [
    ('models = ["ddmp"]', "unknown model 'ddmp'; did you mean 'ddpm'?"),
    ('models = ["vae"]\n[set]\nddim_eta = 1.0', "[set] 'ddim_eta' is a config field of none of the models vae"),
    ('models = ["ddpm"]\n[set.ddpm]\nlearning_rate = 1.0', "[set.ddpm] has no config field 'learning_rate'"),
    ('models = ["ddpm"]\n[set.dppm]\nlr = 1.0', "[set.dppm] names no registered model (did you mean 'ddpm'?)"),
    ('models = ["ddpm"]\nextractors = ["clasifier"]', "unknown feature extractor 'clasifier'; did you mean 'classifier'?"),
])
def test_names_are_checked_against_the_registry(text, message):
    with pytest.raises(GridError) as info:
        cells_of(text)
    assert message in str(info.value) and str(info.value).startswith("g.toml: ")
    assert "\n" not in str(info.value)


def test_load_grid_reads_a_file_and_names_a_missing_one(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(EXAMPLE)
    g = load_grid(path)
    assert g.path == str(path) and g.source == EXAMPLE
    with pytest.raises(GridError, match="grid file not found"):
        load_grid(tmp_path / "missing.toml")


def test_cli_reports_a_bad_grid_in_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('models = ["ddpm"]\n[set.ddpm]\nlearning_rate = 1\n')
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "has no config field 'learning_rate'" in result.output, result.output
    assert not (tmp_path / "out" / "runs").exists()


# ---------------------------------------------------------------------------------- bench/grids
def _expect(models, datasets, seeds, preset, overrides, out):
    return {"models": models, "datasets": datasets, "seeds": seeds, "preset": preset, "overrides": overrides, "out": out}


DIGITS = ["digits"]
EQUAL_TIME = {"max_minutes": "3", "max_steps": "none", "sample_steps": "50", "n_samples": "1000"}
PRECISION_MODELS = ["independent", "ddpm", "vae", "gan", "pixelcnn", "vdm", "ldm"]
LEADERBOARD_FAMILIES = ["ddpm", "vdm", "ldm", "gan", "vae", "pixelcnn", "independent"]
EXPECTED = {
    "leaderboard_standard_digits": _expect(LEADERBOARD_FAMILIES, DIGITS, [0, 1, 2], "standard", {}, "reports-standard"),
    "leaderboard_standard_fashion": _expect(["ldm", "ddpm", "vae", "gan", "pixelcnn", "vdm", "independent"],
                                            ["fashion-mnist"], [0, 1, 2], "standard", {}, "reports-standard-fashion"),
    "main_job": _expect(["ddpm", "vae", "gan"], DIGITS, [0], "quick", {}, "reports"),
    # the DDPM's and VDM's quick presets as they were when the committed cells ran (same run ids)
    "fashion_quick_diffusion": _expect(["ldm", "vdm", "ddpm"], ["fashion-mnist"], [0], "quick",
                                       {"ddpm": {"max_steps": "2000", "precision": "fp32"},
                                        "vdm": {"precision": "fp32"}}, "reports-fashion-quick"),
    "ddpm_quick": _expect(["ddpm"], DIGITS, [0], "quick", {"ddpm": {"sampling_seeds": "3"}}, "reports-bench/ddpm_quick"),
    "ddpm_standard": _expect(["ddpm"], DIGITS, [0], "standard", {"ddpm": {"sampling_seeds": "3"}},
                             "reports-bench/ddpm_standard"),
    "ddpm_curve": _expect(["ddpm"], DIGITS, [0], "quick", {"ddpm": {"sample_every": "250", "n_samples": "500"}},
                          "reports-bench/ddpm_curve"),
    "gan_quick": _expect(["gan"], DIGITS, [0], "quick", {"gan": {"sampling_seeds": "3"}}, "reports-bench/gan_quick"),
    "gan_standard": _expect(["gan"], DIGITS, [0], "standard", {"gan": {"sampling_seeds": "3"}},
                            "reports-bench/gan_standard"),
    "gan_curve": _expect(["gan"], DIGITS, [0], "quick", {"gan": {"sample_every": "500"}}, "reports-bench/gan_curve"),
    "vae_standard": _expect(["vae"], DIGITS, [0], "standard", {"vae": {"iwae_k": "1000"}}, "reports-bench/vae_standard"),
    "vae_curve": _expect(["vae"], DIGITS, [0], "standard", {"vae": {"sample_every": "500"}}, "reports-bench/vae_curve"),
    "vae_curve_normal_prior": _expect(["vae"], DIGITS, [0], "standard",
                                      {"vae": {"prior": "standard", "sample_every": "500"}},
                                      "reports-bench/vae_curve_normal_prior"),
    "pixelcnn_vs_independent": _expect(["pixelcnn", "independent"], DIGITS, [0, 1], "standard",
                                 {"pixelcnn": {}, "independent": {}}, "reports-bench/pixelcnn_vs_independent"),
    "pixelcnn_curve": _expect(["pixelcnn"], DIGITS, [0], "standard",
                              {"pixelcnn": {"max_minutes": "none", "sample_every": "250", "sampling_seeds": "2"}},
                              "reports-bench/pixelcnn_curve"),
    "ldm_digits": _expect(["ldm", "ddpm"], DIGITS, [0], "quick",
                          {m: {**EQUAL_TIME, "sampling_seeds": "3"} for m in ("ldm", "ddpm")}, "reports-bench/ldm_digits"),
    "ldm_fashion-mnist": _expect(["ldm", "ddpm"], ["fashion-mnist"], [0], "quick",
                                 {m: {**EQUAL_TIME, "sampling_seeds": "2"} for m in ("ldm", "ddpm")},
                                 "reports-bench/ldm_fashion-mnist"),
    **{f"precision_{p}_digits": _expect(PRECISION_MODELS, DIGITS, [0, 1, 2], "quick",
                                        {m: {"precision": p, "max_minutes": "none",
                                             **({"max_steps": "2000"} if m == "ddpm" else {})}
                                         for m in PRECISION_MODELS},
                                        f"reports-bench/precision_{p}_digits") for p in ("fp32", "bf16")},
}


def test_every_bench_grid_is_expected_here():
    assert sorted(p.stem for p in GRIDS.glob("*.toml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bench_grid_resolves_to_its_cells(name):
    want = EXPECTED[name]
    grid = load_grid(GRIDS / f"{name}.toml")
    cells = grid.cell_specs(REGISTRY)
    models = REGISTRY.models.names() if want["models"] == "all" else want["models"]
    assert grid.out == want["out"] and grid.models == want["models"]
    assert [(c.dataset, c.model, c.seed) for c in cells] == [
        (d, m, s) for d in want["datasets"] for m in models for s in want["seeds"]]
    for c in cells:
        assert c.preset == want["preset"]
        assert c.overrides == want["overrides"].get(c.model, {})
        # the config resolves (types, presets) as the runner will resolve it before training
        resolve_config(REGISTRY.models.get(c.model), c.preset, REGISTRY.datasets.get(c.dataset).spec, c.overrides)


def test_the_leaderboard_grid_is_the_readme_command():
    """Same cells as `genbench run --models ddpm,vdm,ldm,gan,vae,pixelcnn,independent --preset standard --seeds
    0,1,2`: the stored runs stay valid; every registered model but the diffusers adapter is on it."""
    cells = load_grid(GRIDS / "leaderboard_standard_digits.toml").cell_specs(REGISTRY)
    assert cells == [CellSpec(m, "digits", s, "standard", {}) for m in LEADERBOARD_FAMILIES for s in (0, 1, 2)]
    assert sorted(set(REGISTRY.models.names()) - set(LEADERBOARD_FAMILIES)) == ["diffusers"]


# ---------------------------------------------------------------------------------- the command line as a grid
def test_flags_on_top_of_a_file_follow_one_override_rule():
    """--set KEY replaces [set] KEY and every [set.<model>] KEY; MODEL.KEY adds to that model's table."""
    from genbench.grid import with_flags

    base = parse_grid(EXAMPLE, "example.toml")
    g = with_flags(base, seeds="0,2-3", datasets="digits", sets={"sampling_seeds": "2", "vae.latent_dim": "4"})
    assert g.seeds == [0, 2, 3] and g.path == "example.toml"
    assert g.common_overrides == {"n_samples": 500, "ddim_eta": 0.5, "sampling_seeds": "2"}
    assert g.model_overrides == {"ddpm": {"sample_steps": ["none", 50]}, "vae": {"latent_dim": "4"}}
    by_model = {c.model: c.overrides for c in g.cell_specs(REGISTRY) if c.seed == 0}
    assert by_model["ddpm"]["sampling_seeds"] == "2" and by_model["vae"] == {"n_samples": "500", "sampling_seeds": "2",
                                                                            "latent_dim": "4"}
    flags_only = with_flags(None, models="ddpm,vae", sets={"ddim_eta": "0.5"})
    assert [c.overrides for c in flags_only.cell_specs(REGISTRY)] == [{"ddim_eta": "0.5"}, {}]
    with pytest.raises(GridError, match="give --models"):
        with_flags(None)


def test_resolved_grid_reads_back_into_the_same_cells():
    from genbench.grid import grid_from_resolved, with_flags

    g = with_flags(parse_grid(EXAMPLE, "example.toml"), sets={"ddpm.sampling_seeds": "2", "max_steps": "none"})
    again = grid_from_resolved({"grid": json.loads(json.dumps(g.resolved()))}, "runs/x/config.json")
    assert again.cell_specs(REGISTRY) == g.cell_specs(REGISTRY)
    with pytest.raises(GridError, match="neither a \"grid\" block nor an \"identity\""):
        grid_from_resolved({"rows": []}, "c.json")


@pytest.mark.parametrize("value, message", [
    ("0,0", "gives seed 0 twice"), ([1, 1], "gives seed 1 twice"), ("0-2,1-3", "gives seed 1, 2 twice"),
    ("3-1", "the range '3-1' is empty"), ("-1", "must be a list of integers"),
])
def test_seed_ranges_refuse_duplicates_in_one_line(value, message):
    from genbench.grid import parse_seeds

    assert parse_seeds("0,2-4") == [0, 2, 3, 4] and parse_seeds("0-2") == [0, 1, 2]
    with pytest.raises(GridError, match=message):
        parse_seeds(value, "--seeds", "command line")


def test_split_overrides():
    from genbench.grid import split_overrides

    assert split_overrides({"lr": "1", "vae.lr": "2", "vae.beta": "3"}) == ({"lr": "1"}, {"vae": {"lr": "2", "beta": "3"}})
    for bad in (".lr", "vae.", "a.b.c"):
        with pytest.raises(GridError, match="MODEL.KEY=VALUE"):
            split_overrides({bad: "1"})
