"""Model files of any estimator, in the format their path's suffix names."""

from pathlib import Path

import joblib

from .._files import atomic_write
from .._optional import require
from ._io import load, save

#: The formats of the model files :func:`save_model` writes and :func:`load_model`
#: reads, by suffix. ``.skm`` is this module's format: it holds this package's
#: estimators (the CNNs, the transformers, pipelines and ensembles of them).
#: ``.skops`` is skops.io's format, for scikit-learn's models (after the
#: package's transformers). Neither runs code from the file when loaded. Any
#: other path is a joblib pickle, which runs code on load: it is read only when
#: the caller says the file is trusted.
SAFE_SUFFIX = ".skm"
SKOPS_SUFFIX = ".skops"

#: Types outside skops' own trusted list that a ``.skops`` file may hold: the
#: package's transformers, scikit-learn's decision trees (the random forest)
#: and the MLP's optimizers. A file naming any other type is refused unloaded.
_SKOPS_TRUSTED = (
    "sk_mnist.preprocessing.Deskewer",
    "sk_mnist.preprocessing.GlobalStandardizer",
    "sk_mnist.preprocessing.PixelScaler",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)


def _skops():
    return require("skops.io", "cli", "the .skops model files")


def save_model(model, path):
    """Save ``model`` in the format its path's suffix names.

    Parameters
    ----------
    model : estimator
        Any fitted estimator that the chosen format can hold.
    path : str or path-like
        ``.skm`` (:func:`save`), ``.skops`` (skops.io) or, with any other
        suffix, a joblib pickle. The file is written atomically.
    """
    suffix = Path(path).suffix
    if suffix == SAFE_SUFFIX:
        save(model, path)
    elif suffix == SKOPS_SUFFIX:
        skops_io = _skops()
        atomic_write(path, lambda fh: skops_io.dump(model, fh))
    else:
        atomic_write(path, lambda fh: joblib.dump(model, fh))


def load_model(path, *, trust_pickle=False):
    """Load a model saved by :func:`save_model`, in the format its suffix names.

    Parameters
    ----------
    path : str or path-like
        A ``.skm`` file, a ``.skops`` file or, with any other suffix, a pickle.
    trust_pickle : bool, default=False
        Whether to read a pickle at all: loading one runs any code it holds.

    Returns
    -------
    model : estimator
        The model saved.

    Raises
    ------
    ValueError
        If the file is a pickle and ``trust_pickle`` is False, if a ``.skops``
        file names a type outside skops' trusted types and the package's own
        (it is refused unloaded), or if a ``.skm`` file is invalid.
    """
    suffix = Path(path).suffix
    if suffix == SAFE_SUFFIX:
        return load(path)
    if suffix == SKOPS_SUFFIX:
        skops_io = _skops()
        untrusted = sorted(set(skops_io.get_untrusted_types(file=path)) - set(_SKOPS_TRUSTED))
        if untrusted:
            raise ValueError(f"it holds types that sk-mnist does not load: {', '.join(untrusted)}")
        return skops_io.load(path, trusted=list(_SKOPS_TRUSTED))
    if not trust_pickle:
        raise ValueError(
            f"it is read as a pickle (its suffix is not {SAFE_SUFFIX} or {SKOPS_SUFFIX}), and loading a "
            "pickle runs any code it holds; pass --trust-pickle only if you trust its source"
        )
    return joblib.load(path)
