"""The core's own data sets, registered through the same hook as plugins' data sets."""
from __future__ import annotations

from genbench.data.calibration import Calibration
from genbench.data.cifar import CIFAR10
from genbench.data.digits import Digits
from genbench.data.mnist import MNIST, BinarizedMNIST, FashionMNIST
from genbench.hookspecs import hookimpl


@hookimpl
def genbench_datasets() -> list[type]:
    return [Digits, Calibration, MNIST, FashionMNIST, BinarizedMNIST, CIFAR10]
