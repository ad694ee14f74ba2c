"""Fit several models on MNIST and measure them side by side."""

import os
import pickle
import platform
import time
import warnings
from dataclasses import dataclass
from html import escape
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import sklearn
import torch
from sklearn.base import clone
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import Pipeline
from skorch import NeuralNet
from tqdm.auto import tqdm

from .._optional import require
from ._progress import with_epoch_progress
from ._stats import mcnemar_test, proportion_interval

if TYPE_CHECKING:
    import pandas


def _pandas():
    # Imported when used, so that what needs no table (the progress bars, the
    # statistics) works without the report extra.
    return require("pandas", "report", "sk_mnist.report")


__all__ = ["Comparison", "compare", "count_parameters"]

#: Columns of :attr:`Comparison.table`, in order.
TABLE_COLUMNS = (
    "train_size",
    "accuracy",
    "ci_low",
    "ci_high",
    "n_errors",
    "fit_time",
    "predict_time",
    "throughput",
    "model_size",
    "n_parameters",
)


@dataclass(repr=False)
class Comparison:
    """What :func:`compare` measured: one row per model, plus the details.

    :func:`compare` makes it, and :func:`write_report` writes it up. Each
    parameter is kept as an attribute of the same name.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per model (the index, in the order given): ``train_size``
        (training images used), ``accuracy`` on the test set, ``ci_low`` and
        ``ci_high`` (its confidence interval), ``n_errors``, ``fit_time`` and
        ``predict_time`` (seconds, wall clock), ``throughput`` (test images
        predicted per second), ``model_size`` (bytes of the fitted model
        pickled) and ``n_parameters`` (learned weights; missing for models
        that store training samples or trees, see :func:`count_parameters`).
    per_class_recall : pandas.DataFrame
        Models by classes: the share of each class's test images recognized.
    confusion_matrices : dict of str to ndarray of shape (n_classes, n_classes)
        Counts; rows are true classes, columns predicted ones.
    mcnemar : pandas.DataFrame
        One row per pair of models: ``model_a``, ``model_b``,
        ``only_a_correct``, ``only_b_correct``, ``statistic``, ``pvalue``,
        ``exact`` (see :func:`mcnemar_test`). Not corrected for multiple
        comparisons.
    predictions : dict of str to ndarray of shape (n_test,)
        Each model's predicted labels.
    histories : dict of str to list of pandas.DataFrame
        For models that contain skorch networks: one table of epochs per
        network (``train_loss``, ``valid_loss``, ``valid_acc``, ``dur``).
    fit_warnings : dict of str to list of str
        Warnings raised while a model was fitted (e.g. non-convergence).
    estimators : dict of str to estimator
        The fitted models.
    classes : ndarray of shape (n_classes,)
        The labels, sorted.
    X_test, y_test : ndarray
        The test set the models were scored on.
    confidence : float
        Coverage of the accuracy intervals.
    interval : str
        How they were computed: "wilson" or "exact".
    environment : dict
        Versions, processor count and torch threads at the time of the run.

    See Also
    --------
    compare : Fit and score the models and return their comparison.
    write_report : Write a comparison as Markdown, HTML, JSON and figures.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.report import compare
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> models = {"prior": DummyClassifier(), "knn": KNeighborsClassifier()}
    >>> comparison = compare(models, X[:500], y[:500], X[-100:], y[-100:])
    >>> comparison.table.index.tolist()
    ['prior', 'knn']
    >>> comparison.table.columns[:4].tolist()
    ['train_size', 'accuracy', 'ci_low', 'ci_high']
    >>> comparison.confusion_matrices["knn"].shape
    (10, 10)
    >>> comparison.mcnemar[["model_a", "model_b"]].values.tolist()
    [['prior', 'knn']]

    Its repr, and what a notebook shows, is its table:

    >>> print(repr(comparison).splitlines()[0])
    Comparison of 2 models on 100 test images:
    """

    table: "pandas.DataFrame"
    per_class_recall: "pandas.DataFrame"
    confusion_matrices: dict
    mcnemar: "pandas.DataFrame"
    predictions: dict
    histories: dict
    fit_warnings: dict
    estimators: dict
    classes: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    confidence: float
    interval: str
    environment: dict

    def _title(self):
        return f"Comparison of {len(self.table)} models on {len(self.y_test):,} test images"

    def __repr__(self):
        return f"{self._title()}:\n{self.table.to_string()}"

    def _repr_html_(self):
        # What a notebook shows for a comparison: its table, not every array it holds.
        return f"<p>{escape(self._title())}</p>\n{self.table.to_html()}"


def compare(
    models,
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    train_sizes=None,
    confidence=0.95,
    interval="wilson",
    progress=False,
):
    """Fit and score several models on one test set, and compare them.

    Each model is cloned, fitted on the first ``train_sizes[name]`` training
    samples, timed, and scored on the whole test set. Pairs of models are
    compared with McNemar's test on the same test samples.

    Parameters
    ----------
    models : dict of str to estimator, or list of (str, estimator)
        The models, by name. Names of baselines (``"rbf_svm"``, optionally
        ``"knn+deskew"``) are matched with the classic published results in
        reports.
    X_train : array-like of shape (n_train, n_features)
        Training images, e.g. MNIST pixel rows.
    y_train : array-like of shape (n_train,)
        Training labels.
    X_test : array-like of shape (n_test, n_features)
        Test images.
    y_test : array-like of shape (n_test,)
        Test labels.
    train_sizes : int or dict of str to int, default=None
        Training samples per model, taken from the start of ``X_train``: one
        number for all, or one per model name (models left out get all).
        None: all.
    confidence : float, default=0.95
        Coverage of the accuracy confidence intervals.
    interval : {"wilson", "exact"}, default="wilson"
        Wilson score or exact (Clopper-Pearson) intervals.
    progress : bool, default=False
        Show a progress bar over the models, and one over the epochs of each
        skorch network inside them.

    Returns
    -------
    comparison : Comparison
        ``comparison.table`` has one row per model; the other attributes hold
        per-class recall, confusion matrices, McNemar tests, predictions and
        training histories.

    See Also
    --------
    sk_mnist.baselines.make_baseline : The models to compare.
    write_report : Write a comparison as Markdown, HTML, JSON and figures.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.baselines import make_baseline
    >>> from sk_mnist.report import compare
    >>> X, y = load_mnist(return_X_y=True)
    >>> models = {"knn": make_baseline("knn"), "forest": make_baseline("random_forest", random_state=0)}
    >>> result = compare(models, X[:1000], y[:1000], X[-500:], y[-500:])
    >>> result.table[["train_size", "accuracy", "n_errors"]]  # doctest: +NORMALIZE_WHITESPACE
            train_size  accuracy  n_errors
    model
    knn           1000      0.94        30
    forest        1000      0.95        25
    >>> result.mcnemar[["model_a", "model_b", "only_a_correct", "only_b_correct", "pvalue"]].round(3)
      model_a model_b  only_a_correct  only_b_correct  pvalue
    0     knn  forest              11              16   0.441
    """
    pd = _pandas()  # before the fits, not after them
    models = dict(models)
    if not models:
        raise ValueError("models is empty: give at least one model to compare.")
    X_train, y_train, X_test, y_test = (np.asarray(a) for a in (X_train, y_train, X_test, y_test))
    sizes = _train_sizes(train_sizes, models, len(X_train))
    classes = np.unique(np.concatenate([y_train, y_test]))
    n_test = len(y_test)

    rows, recalls, confusions, predictions, histories, fit_warnings, fitted = {}, {}, {}, {}, {}, {}, {}
    bar = tqdm(models.items(), desc="models", unit="model", disable=not progress)
    for name, model in bar:
        n_train = sizes[name]
        bar.set_postfix_str(f"{name} on {n_train} images")
        model, fit_time, fit_warnings[name] = _fit(
            model, X_train[:n_train], y_train[:n_train], progress, name
        )
        start = time.perf_counter()
        y_pred = np.asarray(model.predict(X_test))
        predict_time = time.perf_counter() - start

        n_correct = int(np.count_nonzero(y_pred == y_test))
        confusion = confusion_matrix(y_test, y_pred, labels=classes)
        rows[name] = (
            n_train,
            n_correct / n_test,
            *proportion_interval(n_correct, n_test, confidence, interval),
            n_test - n_correct,
            fit_time,
            predict_time,
            n_test / predict_time,
            serialized_size(model),
            count_parameters(model),
        )
        with np.errstate(invalid="ignore"):  # a class absent from the test set has no recall
            recalls[name] = np.diag(confusion) / confusion.sum(axis=1)
        confusions[name], predictions[name], fitted[name] = confusion, y_pred, model
        nets = list(_fitted_networks(model))
        if nets:
            histories[name] = [_epochs(net) for net in nets]

    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(TABLE_COLUMNS))
    table["n_parameters"] = table["n_parameters"].astype("Int64")
    table.index.name = "model"
    per_class_recall = pd.DataFrame.from_dict(recalls, orient="index", columns=classes)
    per_class_recall.index.name = "model"
    tests = [
        (a, b, *mcnemar_test(y_test, predictions[a], predictions[b])) for a, b in combinations(models, 2)
    ]
    mcnemar = pd.DataFrame(
        tests,
        columns=["model_a", "model_b", "only_a_correct", "only_b_correct", "statistic", "pvalue", "exact"],
    )
    return Comparison(
        table=table,
        per_class_recall=per_class_recall,
        confusion_matrices=confusions,
        mcnemar=mcnemar,
        predictions=predictions,
        histories=histories,
        fit_warnings=fit_warnings,
        estimators=fitted,
        classes=classes,
        X_test=X_test,
        y_test=y_test,
        confidence=confidence,
        interval=interval,
        environment=_environment(),
    )


def _fit(model, X, y, progress, desc):
    """Fit a clone of ``model``; return it, the seconds taken and the warnings raised."""
    model = clone(model)
    if progress:
        with_epoch_progress(model, desc=desc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
    return model, seconds, sorted({f"{w.category.__name__}: {w.message}" for w in caught})


def _train_sizes(train_sizes, models, n_train):
    if train_sizes is None or isinstance(train_sizes, int):
        train_sizes = dict.fromkeys(models, train_sizes)
    unknown = set(train_sizes) - set(models)
    if unknown:
        raise ValueError(f"train_sizes names models that are not compared: {sorted(unknown)}.")
    sizes = {name: n_train if train_sizes.get(name) is None else train_sizes[name] for name in models}
    for name, size in sizes.items():
        if not 1 <= size <= n_train:
            raise ValueError(f"Train size of {name!r} must be between 1 and {n_train}; got {size}.")
    return sizes


class _ByteCounter:
    """A write-only file that only counts what is written to it."""

    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += memoryview(data).nbytes
        return memoryview(data).nbytes


def serialized_size(estimator):
    """Size of a model pickled, counted without holding the bytes in memory.

    Parameters
    ----------
    estimator : object
        Any picklable object, typically a fitted model.

    Returns
    -------
    n_bytes : int
        Length of ``pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL)``.

    See Also
    --------
    count_parameters : The number of learned weights.

    Examples
    --------
    >>> import pickle
    >>> from sk_mnist.report import serialized_size
    >>> serialized_size([1, 2, 3]) == len(pickle.dumps([1, 2, 3], protocol=pickle.HIGHEST_PROTOCOL))
    True
    """
    counter = _ByteCounter()
    pickle.dump(estimator, counter, protocol=pickle.HIGHEST_PROTOCOL)
    return counter.size


def count_parameters(estimator):
    """Number of learned weights of a fitted model, where that is defined.

    Defined for models with a fixed set of weights: linear models, MLPs,
    skorch networks, PCA, and pipelines and voting ensembles of those (the
    package's pixel transformers learn none). Undefined (None) for models
    that store training samples or grow trees with the data, such as k-NN,
    kernel SVMs and random forests: their ``model_size`` tells their weight.

    Parameters
    ----------
    estimator : estimator
        A fitted model.

    Returns
    -------
    n_parameters : int or None
        The count, or None where it is not defined.

    See Also
    --------
    serialized_size : The size of a model on disk, defined for every model.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sk_mnist.report import count_parameters
    >>> count_parameters(LogisticRegression().fit([[0, 1], [1, 0], [1, 1]], [0, 1, 2]))
    9
    """
    if isinstance(estimator, Pipeline):
        parts = [count_parameters(step) for _, step in estimator.steps if step != "passthrough"]
    elif hasattr(estimator, "named_estimators_"):  # voting and stacking ensembles
        parts = [count_parameters(member) for member in estimator.estimators_]
    elif isinstance(estimator, NeuralNet):
        return sum(weights.numel() for weights in estimator.module_.parameters())
    elif hasattr(estimator, "_torch_module"):  # the package's pixel transformers
        return sum(weights.numel() for weights in estimator._torch_module().parameters())
    elif hasattr(estimator, "coefs_"):  # multi-layer perceptron
        return sum(w.size for w in (*estimator.coefs_, *estimator.intercepts_))
    elif hasattr(estimator, "coef_") and not hasattr(estimator, "support_vectors_"):
        return estimator.coef_.size + np.size(estimator.intercept_)
    elif hasattr(estimator, "components_") and hasattr(estimator, "explained_variance_"):  # PCA
        return estimator.components_.size + estimator.mean_.size
    else:
        return None
    return None if None in parts else sum(parts)


def _fitted_networks(estimator):
    """The fitted skorch networks inside a model: itself, pipeline steps, ensemble members."""
    if isinstance(estimator, NeuralNet):
        yield estimator
    elif isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            yield from _fitted_networks(step)
    elif hasattr(estimator, "named_estimators_"):  # voting and stacking ensembles
        for member in estimator.estimators_:
            yield from _fitted_networks(member)


def _epochs(net):
    columns = ["train_loss", "valid_loss", "valid_acc", "dur"]
    records = [{key: epoch.get(key, np.nan) for key in columns} for epoch in net.history_]
    pd = _pandas()
    return pd.DataFrame(records, columns=columns, index=pd.RangeIndex(1, len(records) + 1, name="epoch"))


def _environment():
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
        "pandas": _pandas().__version__,
    }
