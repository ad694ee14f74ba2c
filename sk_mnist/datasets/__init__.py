"""Data sets: the bundled MNIST digits and the IDX format they come in."""

from ._idx import read_idx
from ._mnist import get_data_home, load_mnist

__all__ = ["get_data_home", "load_mnist", "read_idx"]
