"""scikit-learn's estimator checks, on every estimator the package exports.

The estimators are discovered, not listed, so that one added later is
checked without anyone remembering to add it here.
"""

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

import sk_mnist
from sk_mnist import MNISTCNNClassifier


def public_estimators():
    """Every public BaseEstimator subclass defined in a public sk_mnist module."""
    found = {}
    modules = [sk_mnist] + [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(sk_mnist.__path__, prefix="sk_mnist.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    for module in modules:
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("sk_mnist")
                and not name.startswith("_")
            ):
                found[obj.__qualname__] = obj
    return [found[name] for name in sorted(found)]


def test_discovery_finds_the_known_estimators():
    names = {cls.__name__ for cls in public_estimators()}
    assert {"MNISTCNNClassifier", "PixelScaler", "GlobalStandardizer", "Deskewer"} <= names


def instance(cls):
    """The instance of ``cls`` to check: its defaults, and what a meta-estimator needs besides."""
    if issubclass(cls, GridSearchCV):
        return cls(LogisticRegression(), {"C": [0.1, 1.0]}, progress=False)
    return cls()


def expected_failed_checks(estimator):
    """The checks the networks fail by design, with scikit-learn's reason for its SGD estimators."""
    if isinstance(estimator, MNISTCNNClassifier):
        # Mini-batch training on shuffled batches: a weight of 2 is not a repeated row.
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "sample_weight is not equivalent to removing/repeating samples."
            )
        }
    return {}


@parametrize_with_checks(
    [instance(cls) for cls in public_estimators()], expected_failed_checks=expected_failed_checks
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
