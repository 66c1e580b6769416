"""How long each registered data set takes to load, and how big it is.

    flock /tmp/genbench-cpu.lock .venv/bin/python bench/data.py [--out bench/results/data.json]

The JSON is stamped with the commit (no feature extractor is involved).

Data sets whose files are absent here (MNIST, CIFAR-10 without a network) are timed on
synthetic files of the real size and format (random pixels, written to a temporary folder
in the layout the loader reads: gzip IDX for MNIST, torchvision's pickle batches for
CIFAR-10, whose md5 table is pointed at those files); the JSON marks them "synthetic".
Each load is timed in a fresh process (imports included) and again warm in-process.
"""
from __future__ import annotations

import argparse
import json
import pickle
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_common import write  # noqa: E402  (bench/ is on sys.path when run as a script)


def make_mnist(folder: Path) -> None:
    from genbench.data.idx import write_idx
    from genbench.data.mnist import FILES

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    shapes = {"train_images": (60000, 28, 28), "train_labels": (60000,), "test_images": (10000, 28, 28), "test_labels": (10000,)}
    for key, shape in shapes.items():
        hi = 10 if "labels" in key else 256
        write_idx(folder / f"{FILES[key]}.gz", rng.integers(0, hi, size=shape, dtype=np.uint8))


def make_cifar(root: Path) -> None:
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, size=(10000, 3072), dtype=np.uint8),
                         "labels": rng.integers(0, 10, size=10000).tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import hashlib
from pathlib import Path
root = sys.argv[2] or None
if sys.argv[3] == "1":  # synthetic CIFAR-10: trust the md5s of the files written
    from torchvision.datasets import CIFAR10 as T
    f = Path(root) / "cifar-10-batches-py"
    md5 = lambda p: hashlib.md5(p.read_bytes()).hexdigest()
    T.train_list = [[f"data_batch_{i}", md5(f / f"data_batch_{i}")] for i in range(1, 6)]
    T.test_list = [["test_batch", md5(f / "test_batch")]]
    T.meta = {"filename": "batches.meta", "key": "label_names", "md5": md5(f / "batches.meta")}
from genbench.plugins import build_registry
cls = build_registry(autoload=True).datasets.get(sys.argv[1])
t1 = time.perf_counter()
data = cls(root=root).load()
t2 = time.perf_counter()
data.data_hash
t3 = time.perf_counter()
cls(root=root).load()
t4 = time.perf_counter()
nbytes = sum(getattr(data, s).numel() * getattr(data, s).element_size() for s in ("train", "val", "test"))
print(json.dumps({"cold_total_s": round(t2 - t0, 2), "imports_s": round(t1 - t0, 2), "load_s": round(t2 - t1, 2),
                  "warm_load_s": round(t4 - t3, 2), "hash_s": round(t3 - t2, 2), "sizes": data.sizes,
                  "split_id": data.split_id, "pixels_MB": round(nbytes / 2**20, 1), "entropy_bits_per_dim": data.entropy_bits_per_dim}))
"""


def time_dataset(name: str, root: str | None, synthetic_cifar: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, name, root or "", "1" if synthetic_cifar else "0"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/data.json")
    args = parser.parse_args()
    from genbench.plugins import build_registry

    registry = build_registry(autoload=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        synth = Path(tmp)
        for name, entry in registry.datasets:
            if files_present(entry.cls):
                res = time_dataset(name, None, False) | {"files": "real"}
            elif name in ("mnist", "binarized-mnist"):
                if not (synth / "mnist").exists():
                    make_mnist(synth / "mnist")
                res = time_dataset(name, str(synth / "mnist"), False) | {"files": "synthetic (random pixels, real size, gzip IDX)"}
            elif name == "cifar10":
                make_cifar(synth / "cifar")
                res = time_dataset(name, str(synth / "cifar"), True) | {"files": "synthetic (random pixels, real size, pickle batches)"}
            else:
                res = {"error": "files not found"}
            results[name] = res
            print(name, res, flush=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "command": " ".join(sys.argv)}
    out = Path(args.out)
    write({"meta": meta, "datasets": results}, out.stem, None, folder=out.parent)
    print(f"wrote {out}")


def files_present(cls: type) -> bool:
    """Whether a data set's files are found here without downloading (embedded/synthetic ones: always)."""
    if not hasattr(cls, "locate"):
        return True
    found = cls().locate()[0]
    return bool(found) if isinstance(found, str) else found is not None


if __name__ == "__main__":
    main()
