"""How the PixelCNN's standard preset was chosen: validation bits/dim and FID along one training run.

    flock /tmp/genbench-cpu.lock .venv/bin/python bench/pixelcnn_curve.py --every 250 --set max_steps=2000 \\
        --set max_minutes=none --set dropout=0.5 [--set lr_decay=0.9993] [--set ema_decay=0.998]

Trains the ``standard`` preset (with the overrides) in the runner's batch order, and every ``--every`` steps
prints the validation bits/dim (exact) and the FID of 1000 samples (classifier features, test split).  One
JSON object per line on stdout; append them to bench/results/pixelcnn_curves.md by hand with the command.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import genbench_pixelcnn
from genbench.config import parse_overrides, resolve_config
from genbench.metrics.extractors import get_extractor
from genbench.metrics.fid import fid_between
from genbench.plugins import build_registry
from genbench.runner import Runner, Trainer
from genbench_pixelcnn.model import PixelCNN


def render_sweep(paths: list[str]) -> str:
    """A markdown table of sweep results (JSON lines with a ``tag``): each config's validation optimum at the
    sweep's spacing, the FID there, and the last checkpoint."""
    lines = ["| config | optimum step | val bits/dim | FID at optimum (sampling seeds) | last step: val / FID |",
             "|---|--:|--:|---|---|"]
    for path in paths:
        runs: dict[str, list[dict]] = {}
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            runs.setdefault(row["tag"], []).append(row)
        for tag, rows in runs.items():
            best = min(rows, key=lambda r: r["val_bpd"])
            seeds = " / ".join(f"{f:.1f}" for f in best.get("fids", [best["fid"]]))
            last = rows[-1]
            lines.append(f"| {tag} | {best['step']} | {best['val_bpd']:.3f} | **{best['fid']:.1f}** ({seeds}) "
                         f"| {last['step']}: {last['val_bpd']:.3f} / {last['fid']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default="/tmp/genbench-bench-cache")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (a GPU sweep: trends carry over, numbers do not)")
    ap.add_argument("--tag", default="", help="a label printed in every line (for sweeps)")
    ap.add_argument("--fid-seeds", type=int, default=1, help="sampling seeds per checkpoint; FID = their mean")
    ap.add_argument("--render", nargs="+", metavar="JSONL", help="print the table of finished sweeps and exit")
    args = ap.parse_args()
    if args.render:
        print(render_sweep(args.render))
        return
    torch.set_num_threads(args.threads)
    registry = build_registry(extra=[genbench_pixelcnn], autoload=False)
    data = Runner("/tmp", registry=registry, device=args.device, progress=False).load_data(args.dataset)
    config = resolve_config(PixelCNN, "standard", data.spec, parse_overrides(args.set))
    torch.manual_seed(args.seed)
    model = PixelCNN(config, data.spec, args.device)
    trainer = Trainer(model, data, config, args.seed, Path("/tmp/pixelcnn-curve-unused"), model.device, False)
    train, val = data.unit("train").to(model.device), data.unit("val").to(model.device)
    test = data.unit("test")
    extractor = get_extractor("classifier", data, Path(args.cache), model.device)
    seconds = 0.0
    while model.step < (config.max_steps or 0):
        model.train(True)
        t0 = time.perf_counter()
        model.train_step(trainer.batch(model.step, train))
        model.step += 1
        seconds += time.perf_counter() - t0
        if model.step % args.every:
            continue
        model.train(False)
        with torch.no_grad():
            val_bpd = float(model.nll(val).mean()) / data.spec.dims / math.log(2)
        fids = []
        for s in range(1, args.fid_seeds + 1):
            x = model.sample(config.n_samples, generator=torch.Generator().manual_seed(s))
            torch.set_num_threads(args.threads)  # the sampler runs with its own thread count
            fids.append(fid_between(extractor, test, data.spec.to_unit(data.spec.quantise(x))))
        row = {"step": model.step, "train_s": round(seconds, 1), "val_bpd": round(val_bpd, 4),
               "fid": round(sum(fids) / len(fids), 3)}
        if len(fids) > 1:
            row["fids"] = [round(f, 2) for f in fids]
        print(json.dumps({**({"tag": args.tag} if args.tag else {}), **row}), flush=True)


if __name__ == "__main__":
    main()
