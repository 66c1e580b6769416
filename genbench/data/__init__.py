"""Data sets and loaders."""
from genbench.data.base import DataError, Dataset, DataSplits

__all__ = ["DataError", "Dataset", "DataSplits"]
