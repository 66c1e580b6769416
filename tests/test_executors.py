"""Ray for real: a head and two worker nodes on this machine (Ray's own multi-node harness, loopback only)
sharing one run store; one worker node is killed in the middle of a cell, the cell is retried on the other
node and resumes from its checkpoint, every cell finishes once, a bad cell fails alone, and the rows equal a
local run's (quality rows bit-identical on CPU)."""
from __future__ import annotations

import json
import threading
import time

import pytest

from genbench.executors import run_ray
from genbench.io import load_checkpoint
from genbench.plugins import build_registry
from genbench.runner import CellSpec, Runner

ray = pytest.importorskip("ray", reason="Ray is in the dev extra; install genbench[dev]")
pytestmark = pytest.mark.slow  # a three-node cluster starts in seconds, and each node's worker imports torch

# a loopback address Ray does not rewrite: it turns "127.0.0.1" into the machine's outward address when connecting
LOOPBACK = "127.0.0.2"
STORE = 80 * 1024**2  # bytes of object store per node (cells return rows, not tensors)
CKPT_EVERY = 40
LONG = {"max_steps": 400, "eval_every": 200}  # the VAE's tiny networks, long enough to be killed mid-training
TIMING = {"images_per_second", "latency", "train_seconds", "peak_memory_mib"}


def quality(rows):
    """Every measured number but the timings, in a canonical order."""
    keep = [(r["metric"], r["sampler"], r["kind"], r["reference"], r["sampling_seed"], r["value"], r["stderr"])
            for r in rows if r["metric"] not in TIMING and "second" not in r["metric"]]
    return sorted(keep, key=repr)


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": LOOPBACK, "object_store_memory": STORE, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK, object_store_memory=STORE) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, _node_ip_address=LOOPBACK)
    try:
        yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def kill_node_mid_cell(cluster, workers, run_dir, record):
    """Wait for the cell's first checkpoint, then kill (SIGKILL) the worker node that is running it."""
    deadline = time.monotonic() + 120
    last = run_dir / "checkpoints" / "last.pt"
    while not last.exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.02)
    node_id = json.loads((run_dir / "status.json").read_text())["ray_node"]
    (node,) = [w for w in workers if w.node_id == node_id]
    cluster.remove_node(node, allow_graceful=False)
    record.update(node=node_id, step=load_checkpoint(last)["model"]["step"])


def test_a_lost_nodes_cell_is_retried_on_another_node_and_resumes(cluster, tmp_path):
    cluster, workers = cluster
    registry = build_registry()  # what each Ray task builds: every installed plugin
    options = dict(device="cpu", cache_dir=str(tmp_path / "cache"), extractors=["random-cnn"],
                   checkpoint_every_steps=CKPT_EVERY)
    killed = CellSpec("vae", "digits", 0, "tiny", LONG)
    cells = [killed, CellSpec("vae", "digits", 1, "tiny", LONG),
             CellSpec("independent", "digits", 2, "tiny", {"alpha": "-5"})]  # negative counts: NaN log-probs
    store = tmp_path / "store"  # the run store every node sees
    run_dir = store / "runs" / Runner(store, registry=registry, **options).plan(killed).run_id
    record: dict = {}
    killer = threading.Thread(target=kill_node_mid_cell, args=(cluster, workers, run_dir, record), daemon=True)
    killer.start()
    results = run_ray({"out_dir": str(store), **options}, cells)
    killer.join()

    assert record and 0 < record["step"] < LONG["max_steps"], record
    by_seed = {r.spec.seed: r for r in results}
    assert len(results) == 3 and sorted(by_seed) == [0, 1, 2]  # each cell reported once
    assert by_seed[0].state == by_seed[1].state == "done", (by_seed[0].error, by_seed[1].error)
    assert by_seed[2].state == "failed" and by_seed[2].error and "\n" not in by_seed[2].error
    log = (run_dir / "log.txt").read_text()
    assert log.count(" started (pid ") == 2 and log.count(f"cell {run_dir.name} done") == 1  # 2 attempts, 1 finish
    assert f"at step {record['step']}" in log  # the retry resumed from the killed attempt's checkpoint
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["ray_node"] != record["node"]  # finished on the other node
    for r in (by_seed[0], by_seed[1]):
        assert (r.run_dir / "log.txt").read_text().count(f"cell {r.run_dir.name} done") == 1
    local = Runner(tmp_path / "local", registry=registry, progress=False, **options).run_cell(killed)
    assert local.state == "done", local.error
    assert quality(by_seed[0].rows) == quality(local.rows)  # bit-identical: same kernels, one thread, same RNG
