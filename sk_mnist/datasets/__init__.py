"""Data sets: the bundled MNIST digits, the IDX format they come in, and pictures of digits."""

from ._idx import read_idx
from ._mnist import get_data_home, load_mnist
from ._pictures import MAX_PICTURE_PIXELS, center_digit, read_digit_image

__all__ = [
    "MAX_PICTURE_PIXELS",
    "center_digit",
    "get_data_home",
    "load_mnist",
    "read_digit_image",
    "read_idx",
]
