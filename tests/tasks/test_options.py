"""``--task-set KEY=VALUE``: RePaint's r and j (Lugmayr et al. 2022) and the PixelCNN's particles as options of
the task's method.  Bad keys and values are one line before any work; the values reach the method, its NFE and
the rows' details and setting; without them the defaults (r = j = 10) are today's."""
from __future__ import annotations

import pytest
import torch

from genbench.testing import tiny_model
from genbench.data.files import resolve_dataset
from genbench.diffusion.repaint import repaint_nfe
from genbench.plugins import build_registry
from genbench.tasks.base import TaskError
from genbench.tasks.builtin import Colourise, Denoise, Inpaint
from genbench.tasks.options import apply_task_options, check_task_sets, declared_options, option, parse_task_sets
from genbench.tasks.run import build_task


@pytest.fixture(scope="module")
def registry():
    return build_registry(autoload=True)


def classes(registry, *names):
    return [registry.models.get(n) for n in names]


def test_parse_task_sets_takes_key_value_pairs_once():
    assert parse_task_sets(["resamplings=3", " jump_length = 5 "]) == {"resamplings": "3", "jump_length": "5"}
    with pytest.raises(TaskError, match="write KEY=VALUE"):
        parse_task_sets(["resamplings"])
    with pytest.raises(TaskError, match="given twice"):
        parse_task_sets(["resamplings=3", "resamplings=4"])


@pytest.mark.parametrize("sets, models, capability, says", [
    ({"resamplings": "0"}, ("ddpm",), "complete", "resamplings must be a whole number >= 1"),
    ({"jump_length": "two"}, ("ddpm", "vae"), "complete", "use e.g. --task-set jump_length=10"),
    ({"resamplings": "2.5"}, ("vdm",), "complete", "whole number"),
    ({"particles": "0"}, ("pixelcnn",), "complete", "particles must be a whole number >= 1"),
    ({"resamplings": "3"}, ("vae", "gan"), "complete", "no model of the grid takes 'resamplings'"),
    ({"resamplings": "3"}, ("ddpm",), "denoise", "for other tasks than --task x"),
    ({"resamplings": "3"}, ("ldm",), "colourise", "for other tasks than --task x"),
    ({"particels": "3"}, ("pixelcnn",), "complete", "(the options here: particles)"),
])
def test_bad_task_sets_are_one_line(registry, sets, models, capability, says):
    with pytest.raises(TaskError) as err:
        check_task_sets(sets, "x", capability, classes(registry, *models))
    assert says in str(err.value) and "\n" not in str(err.value)


def test_good_task_sets_are_whole_numbers(registry):
    grid = classes(registry, "ddpm", "vae", "pixelcnn")
    assert check_task_sets({"resamplings": "3", "jump_length": "5", "particles": "4"}, "inpaint", "complete",
                           grid) == {"resamplings": 3, "jump_length": 5, "particles": 4}
    assert check_task_sets({"resamplings": "3"}, "colourise", "colourise", classes(registry, "ddpm")) == {"resamplings": 3}
    assert set(declared_options(registry.models.get("ldm"))) == {"resamplings", "jump_length", "latent_fit",
                                                                 "decode_mean", "pool", "pool_steps"}
    assert check_task_sets({"latent_fit": "0", "decode_mean": "0"}, "inpaint", "complete",
                           classes(registry, "ldm")) == {"latent_fit": 0, "decode_mean": 0}
    assert set(declared_options(registry.models.get("vae"))) == {"pool"}
    # one key taken by two families (the VAE's and the latent diffusion's pool) is parsed by both
    assert check_task_sets({"pool": "0"}, "inpaint", "complete", classes(registry, "ldm", "vae")) == {"pool": 0}


def test_build_task_checks_the_sets_against_the_grid(registry):
    specs = [resolve_dataset("digits", registry).spec]
    task = build_task(registry, "inpaint", "center", None, specs, ["resamplings=2"], classes(registry, "ddpm"))
    assert task.options == {"resamplings": 2}
    with pytest.raises(TaskError, match="go with --task"):
        build_task(registry, None, None, None, specs, ["resamplings=2"], classes(registry, "ddpm"))
    with pytest.raises(TaskError, match="no model of the grid"):
        build_task(registry, "inpaint", None, None, specs, ["resamplings=2"], classes(registry, "vae"))


@pytest.fixture(scope="module")
def ddpm(registry):
    spec = resolve_dataset("digits", registry).spec
    return tiny_model(registry.models.get("ddpm"), spec)


def test_the_defaults_are_the_papers_and_the_options_reach_the_method(ddpm):
    known = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    known[..., 4:, :] = False
    T = ddpm.schedule.T
    assert apply_task_options(ddpm, {}, "complete") == {}
    assert ddpm.completion_nfe(known) == repaint_nfe(T, 10, 10)  # today's numbers unchanged
    assert ddpm.restoration_details("complete", known) == {"method": "RePaint", "resamplings": 10, "jump_length": 10}
    taken = apply_task_options(ddpm, {"resamplings": 3, "jump_length": 5, "particles": 9}, "complete")
    assert taken == {"resamplings": 3, "jump_length": 5}  # particles is the PixelCNN's
    assert option(ddpm, "resamplings", 10) == 3
    assert ddpm.completion_nfe(known) == repaint_nfe(T, 5, 3) != repaint_nfe(T, 10, 10)
    assert ddpm.colourise_nfe() == repaint_nfe(T, 5, 3)
    assert ddpm.restoration_details("complete", known) == {"method": "RePaint", "resamplings": 3, "jump_length": 5}
    assert ddpm.restoration_details("denoise", known) == {"method": "SDEdit"}
    assert Inpaint("bottom-half").setting(taken) == "bottom-half, jump_length=5, resamplings=3"
    assert Inpaint("bottom-half").setting({}) == "bottom-half" and Denoise().setting() == "sigma=0.2"
    assert Colourise().setting({"resamplings": 2}) == "grey=channel mean, resamplings=2"
    assert apply_task_options(ddpm, {"resamplings": 3}, "denoise") == {}  # SDEdit takes no r


def test_the_number_of_network_calls_follows_the_options(ddpm, monkeypatch):
    """The method really runs r and j: count the denoiser's calls of one completion."""
    calls = []
    real = ddpm.eps_var_fn if hasattr(ddpm, "eps_var_fn") else ddpm.eps_fn
    name = "eps_var_fn" if hasattr(ddpm, "eps_var_fn") else "eps_fn"

    def counting(x, t):
        calls.append(1)
        return real(x, t)

    monkeypatch.setattr(ddpm, name, counting)
    x = torch.rand(1, 1, 8, 8)
    known = torch.ones(1, 1, 8, 8, dtype=torch.bool)
    known[..., 4:, :] = False
    apply_task_options(ddpm, {"resamplings": 2, "jump_length": 3}, "complete")
    ddpm.complete(x, known, generator=torch.Generator().manual_seed(0))
    assert len(calls) == ddpm.completion_nfe(known) == repaint_nfe(ddpm.schedule.T, 3, 2)
