"""The diffusers adapter end to end: a tiny randomly initialised UNet2DModel saved with ``save_pretrained`` is
trained, sampled, loaded (``--set pretrained=DIR --steps 0``) and scored through ``genbench run``; a loaded
folder passes the shared contract; bad folders are one line before any run folder exists."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

diffusers = pytest.importorskip("diffusers")

import genbench_diffusers  # noqa: E402
from genbench import DataSpec, plugins  # noqa: E402
from genbench.cli import main  # noqa: E402
from genbench.config import ConfigError, resolve_config  # noqa: E402
from genbench.testing import check_model_contract  # noqa: E402
from genbench_diffusers import DiffusersModel  # noqa: E402

DIGITS = DataSpec(1, 8, 8, 17)
RUN = ["run", "--models", "diffusers", "--dataset", "digits", "--preset", "tiny", "--extractors", "random-cnn",
       "--no-progress", "--set", "n_samples=16", "--set", "sample_batch_size=16"]


def tiny_unet():
    torch.manual_seed(5)
    return diffusers.UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4, attention_head_dim=8)


def tiny_scheduler():
    return diffusers.DDPMScheduler(num_train_timesteps=20, beta_schedule="squaredcos_cap_v2")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A UNet2DModel folder (unet + scheduler side by side) and a DDPMPipeline folder of the same weights."""
    root = tmp_path_factory.mktemp("diffusers-folders")
    unet, sched = tiny_unet(), tiny_scheduler()
    unet.save_pretrained(root / "unet-folder")
    sched.save_pretrained(root / "unet-folder")
    diffusers.DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(root / "pipeline")
    return root


@pytest.fixture
def process_registry():
    """The CLI builds its registry with get_registry(); here: core data sets and metrics plus this plugin."""
    with plugins.using_registry(plugins.build_registry(extra=[genbench_diffusers], autoload=False)):
        yield


def rows_of(out) -> tuple[dict, list[dict]]:
    (run_dir,) = list(out.glob("runs/diffusers-digits-*"))
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"
    return json.loads((run_dir / "config.json").read_text()), json.loads((run_dir / "rows.json").read_text())


def test_train_sample_load_and_score_through_the_cli(process_registry, saved, tmp_path):
    trained = tmp_path / "trained"
    res = CliRunner().invoke(main, [*RUN, "--steps", "2", "--set", "scheduler=ddim", "--set", "sample_steps=3",
                                    "--out", str(trained)])
    assert res.exit_code == 0, res.output
    config, rows = rows_of(trained)
    assert config["identity"]["config"]["max_steps"] == 2
    fid = [r for r in rows if r["metric"] == "fid"]
    assert fid and all(r["sampler"] == "diffusers-DDIM-3" for r in fid)
    assert {r["value"] for r in rows if r["metric"] == "nfe"} == {3}

    loaded = tmp_path / "loaded"
    folder = saved / "pipeline"
    res = CliRunner().invoke(main, [*RUN, "--steps", "0", "--set", f"pretrained={folder}", "--set",
                                    "scheduler=dpm-solver++", "--set", "sample_steps=4", "--out", str(loaded)])
    assert res.exit_code == 0, res.output
    config, rows = rows_of(loaded)
    cfg = config["identity"]["config"]
    assert cfg["max_steps"] == 0 and cfg["pretrained"] == str(folder.resolve()) and len(cfg["pretrained_sha256"]) == 64
    assert {r["sampler"] for r in rows if r["metric"] == "fid"} == {"diffusers-DPM-Solver++-4"}
    assert {r["value"] for r in rows if r["metric"] == "nfe"} == {4}
    assert {r["value"] for r in rows if r["metric"] == "parameters"} == {sum(p.numel() for p in tiny_unet().parameters())}


def test_a_loaded_folder_samples_with_its_weights_and_schedule(saved):
    """Both layouts load the saved weights; with steps 0 the EMA is those weights; the folder's noise schedule
    (20 cosine steps) wins over the config's defaults; samples equal diffusers' own pipeline loop."""
    config = resolve_config(DiffusersModel, "quick", DIGITS, {"pretrained": str(saved / "unet-folder"),
                                                              "scheduler": "ddim", "sample_steps": "5"})
    model = DiffusersModel(config, DIGITS)
    pipe = DiffusersModel(resolve_config(DiffusersModel, "quick", DIGITS, {"pretrained": str(saved / "pipeline"),
                                                                         "scheduler": "ddim"}), DIGITS)
    reference = tiny_unet().state_dict()
    for m in (model, pipe):
        assert m.T == 20 and m.train_scheduler.config.beta_schedule == "squaredcos_cap_v2"
        for name, tensor in reference.items():
            assert torch.equal(m.unet.state_dict()[name], tensor) and torch.equal(m.sampling_net.state_dict()[name], tensor)
    assert config.pretrained_sha256 != pipe.config.pretrained_sha256  # other files, other identity

    sched = diffusers.DDIMScheduler.from_config(tiny_scheduler().config)
    sched.set_timesteps(5)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 1, 8, 8, generator=g)
    unet = tiny_unet().eval()
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(unet(x, t).sample, t, x).prev_sample
        ours = model.sample(2, steps=5, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(ours, ((x + 1) / 2).clamp(0, 1), atol=1e-6)


def test_a_loaded_folder_passes_the_shared_contract(saved):
    class Loaded(DiffusersModel):
        presets = {"tiny": {**DiffusersModel.presets["tiny"], "pretrained": str(saved / "unet-folder")}}

    check_model_contract(Loaded, DIGITS)


def test_a_folder_of_another_size_or_channel_count_is_refused(saved):
    config = resolve_config(DiffusersModel, "tiny", DIGITS, {"pretrained": str(saved / "pipeline")})
    for spec, needle in ((DataSpec(1, 28, 28, 256), "trained on 8x8 images; the data set's are 28x28"),
                         (DataSpec(3, 8, 8, 256), "maps 1 to 1 channels; the data set has 3")):
        with pytest.raises(ValueError, match=needle):
            DiffusersModel(config, spec)


def test_bad_folders_are_one_line_before_any_run_folder(process_registry, saved, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text(json.dumps(dict(tiny_unet().config, _class_name="UNet2DModel")))
    conditional = tmp_path / "conditional"
    conditional.mkdir()
    (conditional / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    cases = [(empty, "has no config.json (nor unet/config.json)"), (no_weights, "no weights"),
             (conditional, "describes a UNet2DConditionModel")]
    for folder, needle in cases:
        out = tmp_path / f"out-{folder.name}"
        res = CliRunner().invoke(main, [*RUN, "--steps", "0", "--set", f"pretrained={folder}", "--out", str(out)])
        assert res.exit_code != 0 and needle in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1, res.output
        assert not (out / "runs").exists()
        with pytest.raises(ConfigError, match="diffusers: "):
            resolve_config(DiffusersModel, "tiny", DIGITS, {"pretrained": str(folder)})
