"""scikit-learn's digits: 1797 8x8 images, 17 grey levels (0..16), shipped inside the wheel."""
from __future__ import annotations

from genbench.data.base import Dataset, DataSplits, make_splits, split_indices
from genbench.model import DataSpec

SPLIT_SEED = 20240611
SPLIT_VERSION = "v1"


class Digits(Dataset):
    """UCI optical digits via ``sklearn.datasets.load_digits`` (no download): train 1197 / val 300 / test 300."""

    name = "digits"
    description = "scikit-learn load_digits: 8x8 grey, 17 levels, 10 classes, embedded (no download)"
    spec = DataSpec(channels=1, height=8, width=8, levels=17)
    split_sizes = {"train": 1197, "val": 300, "test": 300}

    def load(self) -> DataSplits:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = bunch.images.astype("uint8")[:, None]  # values 0..16
        labels = bunch.target
        idx = split_indices(len(images), {"test": 300, "val": 300}, SPLIT_SEED)
        return make_splits(
            self.spec,
            {k: images[v] for k, v in idx.items()},
            {k: labels[v] for k, v in idx.items()},
            split_id=f"digits-{SPLIT_VERSION}:seed{SPLIT_SEED}:train1197/val300/test300",
            num_classes=10,
        )
