"""sk_mnist: a convolutional network for handwritten digits as a scikit-learn estimator.

The public objects are re-exported here from the private modules that
define them; the submodules :mod:`sk_mnist.datasets`,
:mod:`sk_mnist.preprocessing` and :mod:`sk_mnist.modules` hold the rest.
"""

from ._classifier import MNISTCNNClassifier
from .datasets import load_mnist
from .ensemble import make_cnn_ensemble

__version__ = "0.1.0"

__all__ = ["MNISTCNNClassifier", "load_mnist", "make_cnn_ensemble", "__version__"]
