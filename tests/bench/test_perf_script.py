"""bench/perf/perf.py: the smoke mode runs end to end and writes a stamped JSON + Markdown; the FLOP counter it
relies on agrees with the hand count of a linear layer."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "perf" / "perf.py"


def load_perf():
    spec = importlib.util.spec_from_file_location("genbench_perf_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flops_of_a_linear_layer_is_the_hand_count():
    perf = load_perf()
    layer = torch.nn.Linear(30, 20)
    x = torch.randn(7, 30)
    assert perf.flops_of(lambda: layer(x)) == 2 * 7 * 30 * 20  # one multiply-add per weight per row


def test_smoke_run_writes_stamped_results_with_every_section(tmp_path):
    perf = load_perf()
    out = tmp_path / "perf.json"
    res = perf.main(["--smoke", "--no-compile", "--precisions", "fp32", "--out", str(out)])
    doc = json.loads(out.read_text())
    assert doc["stamp"]["commit"] and doc["mode"] == "smoke"
    assert abs(doc["sampling"]["params_ratio"] - 1) <= 0.05  # diffusers' U-Net within 5% of genbench's
    assert {v["nfe"] for v in doc["sampling"]["settings"].values()} == {2, 3}
    assert doc["harness"]["fp32"]["genbench_ms_per_step"] > 0 and doc["harness"]["fp32"]["bare_ms_per_step"] > 0
    assert doc["pixelcnn"]["same_draws"] is True  # the cached sampler draws what the naive loop draws
    fid = doc["fid"]["classifier_cnn"]
    assert abs(fid["genbench"]["fid"] - fid["torchmetrics"]["fid"]) <= 1e-3 * max(1.0, abs(fid["genbench"]["fid"]))
    by_family = {r["family"]: r for r in doc["flops"]}
    assert "error" not in by_family["ddpm"] and by_family["ddpm"]["train_flops_per_image"] > 0
    assert res["peak"]["fp32"]["gflops"] > 0
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# genbench performance") and "Commit `" in md and "Harness overhead" in md
    # a partial re-measurement keeps the other sections and says what was re-measured
    perf.main(["--smoke", "--precisions", "fp32", "--out", str(out), "--sections", "pixelcnn"])
    again = json.loads(out.read_text())
    assert again["sampling"] == doc["sampling"] and set(again["remeasured"]) == {"pixelcnn"}
    assert "Re-measured later" in out.with_suffix(".md").read_text()


def test_the_paper_section_measures_a_cifar_shaped_ddpm_and_renders(tmp_path):
    perf = load_perf()
    reg = perf.registry()
    cpu = perf.torch.device("cpu")
    peak = {"fp32": {"n": 8, "gflops": 1.0}}
    row = perf.bench_paper(reg, cpu, ["fp32"], 1, peak, sample_n=2, sample_steps=2, preset="tiny")
    assert row["image"] == "3x32x32" and row["sampler"].startswith("DDIM") and row["sample_n"] == 2
    assert row["train_flops_per_image"] > 0 and row["sample_flops_per_image"] > 0 and row["params"] > 0
    v = row["fp32"]
    assert v["train_images_per_second"] > 0 and v["sample_images_per_second"] > 0
    assert abs(v["train_fraction_of_peak"] - v["train_gflops"] / 1.0) < 1e-12


def test_a_failing_section_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    perf = load_perf()
    out = tmp_path / "perf.json"

    def boom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (planted)")

    monkeypatch.setattr(perf, "bench_sampling", boom)
    perf.main(["--smoke", "--no-compile", "--precisions", "fp32", "--out", str(out)])
    doc = json.loads(out.read_text())
    assert doc["sampling"] == {"error": "RuntimeError: CUDA out of memory (planted)"}
    assert doc["pixelcnn"]["same_draws"] is True and "partial_after" not in doc  # the later sections ran
    assert not (tmp_path / "perf.partial.json").exists()  # removed once the run completed
    md = out.with_suffix(".md").read_text()
    assert "## Sections that failed" in md and "- sampling: RuntimeError: CUDA out of memory (planted)" in md
    assert "PixelCNN: row-cached sampler" in md


def test_the_layouts_section_times_every_precision_and_memory_format():
    perf = load_perf()
    reg = perf.registry()
    cpu = perf.torch.device("cpu")
    spec = perf.DataSpec(1, 8, 8, 17)
    rows = perf.bench_layouts(reg, cpu, ["fp32"], 1, cases=[("ddpm tiny 8x8", "tiny", spec, 4)])
    assert [(r["precision"], r["memory_format"], r["kernels"]) for r in rows] == [
        ("fp32", "contiguous", "default"), ("fp32", "channels_last", "default")]
    assert all(r["train_ms_per_step"] > 0 and r["net_call_ms"] > 0 for r in rows)
    md = perf.markdown({"when": "now", "machine": "m", "device": "cpu", "threads": 1, "loadavg": [0], "mode": "smoke",
                        "command": "c", "peak": {"fp32": {"n": 8, "gflops": 1.0}},
                        "sampling": {"settings": {}, "params_genbench": 1, "params_diffusers": 1, "params_ratio": 1.0,
                                     "batch": 1, "image": "1x8x8"}, "harness": {}, "fid": {}, "flops": [],
                        "layouts": rows, "pixelcnn": None})
    assert "| ddpm tiny 8x8 | fp32 | channels_last | default | 4 |" in md


def test_a_stopped_run_keeps_its_sections_beside_the_results_file_not_in_it(tmp_path, monkeypatch):
    """A run killed mid-way (here: interrupted in the PixelCNN section) leaves <stem>.partial.json with what it
    measured; the results file itself is not touched, so a checkout's committed results stay as they were."""
    perf = load_perf()
    out = tmp_path / "perf.json"
    out.write_text('{"committed": true}')

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(perf, "bench_pixelcnn", stop)
    with pytest.raises(KeyboardInterrupt):
        perf.main(["--smoke", "--no-compile", "--precisions", "fp32", "--out", str(out)])
    assert json.loads(out.read_text()) == {"committed": True}
    doc = json.loads((tmp_path / "perf.partial.json").read_text())
    assert doc["partial_after"] == "flops" and "sampling" in doc and "pixelcnn" not in doc
