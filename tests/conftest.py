import os

# scikit-learn's array API check needs this before scipy is imported; with it
# set, check_estimator runs that check instead of skipping it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sk_mnist import MNISTCNNClassifier, load_mnist


def assert_same_weights(a, b):
    """The two fitted classifiers' networks hold equal tensors, name for name."""
    for (name, x), (other, y) in zip(
        a.module_.state_dict().items(), b.module_.state_dict().items(), strict=True
    ):
        assert name == other and torch.equal(x, y), name


class InterruptAfter(Callback):
    """Raise KeyboardInterrupt at the end of an epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="session")
def mnist_train():
    return load_mnist("train", return_X_y=True)


@pytest.fixture(scope="session")
def mnist_test():
    return load_mnist("test", return_X_y=True)


@pytest.fixture(scope="session")
def small_mnist(mnist_train):
    """1,200 training and 300 held-out images: enough to learn, fast to fit."""
    X, y = mnist_train
    return X[:1200], y[:1200], X[-300:], y[-300:]


@pytest.fixture(scope="session")
def lenet_teacher(small_mnist):
    """A distillation teacher: LeNet, several times the student's size, fitted on ``small_mnist``."""
    X, y, _, _ = small_mnist
    return MNISTCNNClassifier(architecture="lenet", max_epochs=4, random_state=0).fit(X, y)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
