"""bench/perf/perf.py: the smoke mode runs end to end and writes a stamped JSON + Markdown; the FLOP counter it
relies on agrees with the hand count of a linear layer."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

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
