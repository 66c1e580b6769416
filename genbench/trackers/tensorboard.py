"""TensorBoard: one event-file folder per cell, ``<out>/tensorboard/<run_id>/`` (``tensorboard --logdir <out>/tensorboard``).

Curves under ``train/<name>`` (losses, validation bits/dim, sample scores), the sample grids under
``samples/<sampler>``, every final row as a scalar ``rows/<metric>/<kind sampler extractor>`` at the last
training step and as a text table ``rows``, and the config as the text ``config`` (JSON).
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from genbench.trackers.base import Tracker, TrackerError, row_key

TAG_TRAIN, TAG_SAMPLES, TAG_ROWS = "train", "samples", "rows"


class TensorBoardTracker(Tracker):
    name = "tensorboard"
    description = "TensorBoard event files in <out>/tensorboard/<run_id> (curves, sample grids, rows, config)"

    def __init__(self, out_dir) -> None:
        super().__init__(out_dir)
        self.writer = None

    @classmethod
    def check(cls) -> None:
        try:
            import tensorboard  # noqa: F401
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise TrackerError("--log tensorboard needs TensorBoard: pip install 'genbench[trackers]' "
                               "(or pip install tensorboard)") from None

    def start_cell(self, run_id: str, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.out_dir / "tensorboard" / run_id))
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=2, sort_keys=True, default=str) + "\n```")

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            if math.isfinite(value):
                self.writer.add_scalar(f"{TAG_TRAIN}/{key}", value, step)

    def log_images(self, step: int, images: dict[str, np.ndarray]) -> None:
        for name, image in images.items():
            self.writer.add_image(f"{TAG_SAMPLES}/{name}", image, step, dataformats="HWC")

    def log_rows(self, step: int, rows: list[dict[str, Any]]) -> None:
        lines = ["| metric | value | stderr | unit | kind | sampler | extractor |", "|---|--:|--:|---|---|---|---|"]
        for row in rows:
            value = row.get("value")
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{TAG_ROWS}/{row_key(row)}", float(value), step)
            lines.append("| " + " | ".join(str(row.get(k) if row.get(k) is not None else "") for k in
                                          ("metric", "value", "stderr", "unit", "kind", "sampler", "extractor")) + " |")
        self.writer.add_text(TAG_ROWS, "\n".join(lines), step)

    def end_cell(self, state: str) -> None:
        if self.writer is not None:
            self.writer.add_text("state", state)
            self.writer.close()
            self.writer = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
