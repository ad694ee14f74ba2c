"""sk_mnist: a convolutional network for handwritten digits as a scikit-learn estimator.

The public objects are re-exported here from the private modules that
define them; the submodules :mod:`sk_mnist.datasets`,
:mod:`sk_mnist.preprocessing`, :mod:`sk_mnist.modules`,
:mod:`sk_mnist.baselines`, :mod:`sk_mnist.report`, :mod:`sk_mnist.export`,
:mod:`sk_mnist.persistence` and :mod:`sk_mnist.monitoring` hold the rest.
"""

import importlib

from .datasets import load_mnist

__version__ = "0.1.0"

__all__ = [
    "DistilledCNNClassifier",
    "MNISTCNNClassifier",
    "__version__",
    "load",
    "load_mnist",
    "make_cnn_ensemble",
    "save",
]

# Imported on first use (PEP 562): they import torch, which predicting with
# an exported ONNX model (sk_mnist.export.ONNXClassifier) must not need.
_LAZY = {
    "DistilledCNNClassifier": ".distill",
    "MNISTCNNClassifier": "._classifier",
    "make_cnn_ensemble": ".ensemble",
    "load": ".persistence",
    "save": ".persistence",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later lookups skip __getattr__
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
