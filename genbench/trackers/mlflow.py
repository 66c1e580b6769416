"""MLflow: one MLflow run per cell, named by the run id, in the experiment ``$MLFLOW_EXPERIMENT_NAME`` (default
"genbench") of the tracking store ``$MLFLOW_TRACKING_URI`` (default: ``sqlite:///<out>/mlflow.db``, MLflow's
local database, with the artifacts in ``<out>/mlflow-artifacts``; ``mlflow ui --backend-store-uri
sqlite:///<out>/mlflow.db`` shows it).

Curves as metrics ``train/<name>`` with their step; every config field as a parameter (``model``, ``dataset``,
``seed``, ``preset``, ``config.<field>``), the whole config.json as the artifact ``config.json``; the sample grids
as ``samples/<sampler>.png``; every final row as the metric ``rows/<metric>/<kind sampler extractor>`` at the
last training step and all rows as the artifact ``rows.json``; the run ends FINISHED or FAILED.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from genbench.trackers.base import Tracker, TrackerError, row_key

EXPERIMENT_ENV, URI_ENV = "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"
DEFAULT_EXPERIMENT = "genbench"
MAX_PARAM_CHARS = 500  # MLflow's limit on a parameter's value (older servers)


def _params(config: dict[str, Any]) -> dict[str, str]:
    ident = config.get("identity", {})
    params = {k: str(ident[k]) for k in ("model", "dataset", "seed", "preset", "device") if k in ident}
    params.update({f"config.{k}": json.dumps(v) if isinstance(v, (list, dict)) else str(v)
                   for k, v in (ident.get("config") or {}).items()})
    if "config_hash" in config:
        params["config_hash"] = str(config["config_hash"])
    return {k: v[:MAX_PARAM_CHARS] for k, v in params.items()}


class MLflowTracker(Tracker):
    name = "mlflow"
    description = "MLflow runs in $MLFLOW_TRACKING_URI (default sqlite:///<out>/mlflow.db): curves, grids, rows, config"

    def __init__(self, out_dir) -> None:
        super().__init__(out_dir)
        self.client = None
        self.run_id: str | None = None

    @classmethod
    def check(cls) -> None:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise TrackerError("--log mlflow needs MLflow: pip install 'genbench[trackers]' (or pip install mlflow)") from None

    @property
    def tracking_uri(self) -> str:
        return os.environ.get(URI_ENV) or f"sqlite:///{(self.out_dir / 'mlflow.db').resolve()}"

    def _artifact_location(self) -> str | None:
        """Artifacts of an experiment created in the default store go beside it (MLflow would use ./mlruns)."""
        return None if os.environ.get(URI_ENV) else (self.out_dir / "mlflow-artifacts").resolve().as_uri()

    def start_cell(self, run_id: str, config: dict[str, Any]) -> None:
        from mlflow import MlflowClient

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        name = os.environ.get(EXPERIMENT_ENV) or DEFAULT_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = (experiment.experiment_id if experiment is not None else
                         self.client.create_experiment(name, artifact_location=self._artifact_location()))
        ident = config.get("identity", {})
        tags = {"genbench.run_id": run_id, **{f"genbench.{k}": str(ident[k]) for k in ("model", "dataset", "seed")
                                              if k in ident}}
        self.run_id = self.client.create_run(experiment_id, run_name=run_id, tags=tags).info.run_id
        from mlflow.entities import Param

        self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in _params(config).items()])
        self.client.log_dict(self.run_id, config, "config.json")

    def _metrics(self, values: dict[str, float], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items() if math.isfinite(float(v))]
        for i in range(0, len(metrics), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self._metrics({f"train/{k}": v for k, v in values.items()}, step)

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            self.client.log_image(self.run_id, image, artifact_file=f"samples/{name}.png")

    def log_rows(self, step: int, rows: list[dict[str, Any]]) -> None:
        values = {f"rows/{row_key(r)}": float(r["value"]) for r in rows
                  if isinstance(r.get("value"), (int, float)) and math.isfinite(r["value"])}
        self._metrics(values, step)
        self.client.log_dict(self.run_id, rows, "rows.json")

    def end_cell(self, state: str) -> None:
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, status="FINISHED" if state == "done" else "FAILED")
        self.run_id = None
