"""Grid searches over the CNN's regularization, on this machine or on a Dask cluster.

:func:`make_search` builds a :class:`~sklearn.model_selection.GridSearchCV`
over a pipeline of :class:`~sk_mnist.preprocessing.GlobalStandardizer` and
:class:`~sk_mnist.MNISTCNNClassifier`, by default on the grid of
:func:`regularization_grid`. :func:`fit_search` fits it in local worker
processes (``n_jobs``) or, given a scheduler address or the
``SK_MNIST_DASK_SCHEDULER`` environment variable, on the workers of a Dask
cluster (:func:`dask_backend`). :func:`ranked_results` and
:func:`plot_search` turn ``cv_results_`` into a table and a heatmap.

The Dask glue needs the ``distributed`` extra (``pip install
"sk_mnist[distributed]"``); the table and the plot need the ``report`` extra.
"""

import math
import os
from contextlib import contextmanager
from numbers import Integral

import joblib
import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import GridSearchCV, ParameterGrid, check_cv
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import Interval, validate_params

from ._classifier import MNISTCNNClassifier
from ._docs import DocLinkMixin
from ._optional import require
from .preprocessing import GlobalStandardizer

__all__ = [
    "SCHEDULER_ENV",
    "SEARCH_RUNS",
    "GridSearchProgressCV",
    "dask_backend",
    "fit_search",
    "make_search",
    "plot_search",
    "ranked_results",
    "regularization_grid",
    "scheduler_address",
]

#: The environment variable that names the Dask scheduler searches run on
#: when no address is given, e.g. ``tcp://10.0.0.5:8786``.
SCHEDULER_ENV = "SK_MNIST_DASK_SCHEDULER"

#: Training images, epochs and folds of ``sk-mnist search``: the default run
#: finishes within 5 minutes on 2 cores; --full is the full training set and grid.
SEARCH_RUNS = {"default": (6_000, 5, 3), "full": (60_000, 15, 3)}


def regularization_grid(full=False):
    """The grid of regularization settings searched by default.

    Dropout, L2 weight decay, batch normalization and augmentation, two
    values each: 16 candidates, sized for the default search (6,000
    images, 5 epochs, 3 folds) on a laptop's CPU.
    The full grid adds a third value of dropout and of weight decay and two
    learning rates: 72 candidates, meant for a cluster.

    The grid searches no scaler: the classifier standardizes its input with
    the training pixels' own mean and deviation, so
    :class:`~sk_mnist.preprocessing.PixelScaler` and
    :class:`~sk_mnist.preprocessing.GlobalStandardizer` in front of it train
    the same network.

    Parameters
    ----------
    full : bool, default=False
        Whether to return the full grid.

    Returns
    -------
    param_grid : dict of str to list
        Values of the pipeline step ``cnn``'s parameters, for
        :class:`~sklearn.model_selection.GridSearchCV`.

    See Also
    --------
    make_search : The search over this grid.

    Examples
    --------
    >>> from sk_mnist.search import regularization_grid
    >>> regularization_grid()  # doctest: +NORMALIZE_WHITESPACE
    {'cnn__dropout': [0.25, 0.5], 'cnn__weight_decay': [0.0, 0.001],
     'cnn__batch_norm': [True, False], 'cnn__augment': [True, False]}
    >>> len(regularization_grid(full=True)["cnn__lr"])
    2
    """
    if full:
        return {
            "cnn__dropout": [0.0, 0.25, 0.5],
            "cnn__weight_decay": [0.0, 1e-4, 1e-3],
            "cnn__batch_norm": [True, False],
            "cnn__augment": [True, False],
            "cnn__lr": [1e-3, 3e-3],
        }
    return {
        "cnn__dropout": [0.25, 0.5],
        "cnn__weight_decay": [0.0, 1e-3],
        "cnn__batch_norm": [True, False],
        "cnn__augment": [True, False],
    }


class GridSearchProgressCV(DocLinkMixin, GridSearchCV):
    """:class:`~sklearn.model_selection.GridSearchCV` with a progress bar over its fits.

    The bar counts candidates times folds. To advance it, the candidates are
    evaluated in rounds, each of as many candidates as keep every worker
    busy to its end (their fits a multiple of the workers): the bar moves
    once per round, the fits run as in one ``GridSearchCV`` call, and the
    results are the same.

    Parameters
    ----------
    estimator : estimator object
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    param_grid : dict or list of dict
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    scoring : str, callable, list, tuple or dict, default=None
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    n_jobs : int, default=None
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    refit : bool, str or callable, default=True
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    cv : int, cross-validation generator or iterable, default=None
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    verbose : int, default=0
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    pre_dispatch : int or str, default="2*n_jobs"
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    error_score : "raise" or numeric, default=np.nan
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    return_train_score : bool, default=False
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    progress : bool, default=True
        Whether to show the progress bar (tqdm's, on standard error).

    Attributes
    ----------
    cv_results_ : dict of numpy (masked) ndarrays
        As for :class:`~sklearn.model_selection.GridSearchCV`, whose other
        fitted attributes it has too.

    See Also
    --------
    make_search : Builds one over the CNN's regularization.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.search import GridSearchProgressCV
    >>> X, y = load_mnist(return_X_y=True)
    >>> grid = {"n_neighbors": [1, 3, 5]}
    >>> search = GridSearchProgressCV(KNeighborsClassifier(), grid, cv=2, progress=False)
    >>> search.fit(X[:500], y[:500]).best_params_
    {'n_neighbors': 1}
    """

    def __init__(
        self,
        estimator,
        param_grid,
        *,
        scoring=None,
        n_jobs=None,
        refit=True,
        cv=None,
        verbose=0,
        pre_dispatch="2*n_jobs",
        error_score=np.nan,
        return_train_score=False,
        progress=True,
    ):
        super().__init__(
            estimator,
            param_grid,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            verbose=verbose,
            pre_dispatch=pre_dispatch,
            error_score=error_score,
            return_train_score=return_train_score,
        )
        self.progress = progress

    def _run_search(self, evaluate_candidates):
        # GridSearchCV's own extension point: it accumulates the results of
        # every call to evaluate_candidates as of one call with all of them.
        tqdm = require("tqdm.auto", "report", "a search's progress bar").tqdm
        candidates = list(ParameterGrid(self.param_grid))
        n_splits = check_cv(self.cv, classifier=is_classifier(self.estimator)).get_n_splits()
        workers = joblib.effective_n_jobs(self.n_jobs)
        per_round = math.lcm(n_splits, workers) // n_splits
        with tqdm(
            total=len(candidates) * n_splits,
            desc="fits (candidates x folds)",
            unit="fit",
            disable=not self.progress,
        ) as bar:
            for start in range(0, len(candidates), per_round):
                batch = candidates[start : start + per_round]
                evaluate_candidates(batch)
                bar.update(len(batch) * n_splits)


@validate_params(
    {
        "param_grid": [dict, list, None],
        "cv": [Interval(Integral, 2, None, closed="left"), "cv_object"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "refit": ["boolean"],
        "progress": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def make_search(
    param_grid=None, *, cv=3, n_jobs=None, random_state=0, refit=True, progress=False, **cnn_params
):
    """Build a grid search over a standardizer-and-CNN pipeline.

    Every candidate is scored by accuracy on each of ``cv`` stratified folds;
    all fits share ``random_state``, so candidates differ only in the
    parameters searched.

    Parameters
    ----------
    param_grid : dict or list of dict, default=None
        Parameters of the steps ``scale`` and ``cnn``, as for
        :class:`~sklearn.model_selection.GridSearchCV`; None searches
        :func:`regularization_grid`.
    cv : int or cross-validation generator, default=3
        Folds (stratified when an int).
    n_jobs : int, default=None
        Fits run in parallel on this machine (-1: one per core). Each
        worker process limits torch to its share of the cores. Under a Dask
        backend, the cluster's threads decide instead.
    random_state : int, RandomState instance or None, default=0
        Seed of every fit. An int makes the search reproducible.
    refit : bool, default=True
        Whether to refit the best candidate on all the data
        (``best_estimator_``).
    progress : bool, default=False
        Whether to show a progress bar over the fits (candidates times
        folds).
    **cnn_params : dict
        Fixed parameters of the :class:`~sk_mnist.MNISTCNNClassifier`,
        e.g. ``max_epochs=5``.

    Returns
    -------
    search : GridSearchProgressCV
        A :class:`~sklearn.model_selection.GridSearchCV`, unfitted; fit it
        with :func:`fit_search` or its own ``fit``.

    See Also
    --------
    fit_search : Fit it here or on a Dask cluster.
    regularization_grid : The default grid.

    Examples
    --------
    >>> from sk_mnist.search import make_search
    >>> search = make_search(max_epochs=5, n_jobs=-1)
    >>> search.estimator
    Pipeline(steps=[('scale', GlobalStandardizer()),
                    ('cnn', MNISTCNNClassifier(max_epochs=5, random_state=0))])
    >>> len(search.param_grid), search.cv, search.scoring
    (4, 3, 'accuracy')
    """
    pipeline = Pipeline(
        [
            ("scale", GlobalStandardizer()),
            ("cnn", MNISTCNNClassifier(random_state=random_state, **cnn_params)),
        ]
    )
    grid = regularization_grid() if param_grid is None else param_grid
    return GridSearchProgressCV(
        pipeline, grid, scoring="accuracy", cv=cv, n_jobs=n_jobs, refit=refit, progress=progress
    )


def scheduler_address(scheduler=None):
    """The Dask scheduler a search should use, if any.

    Parameters
    ----------
    scheduler : str, default=None
        An address such as ``"tcp://10.0.0.5:8786"``.

    Returns
    -------
    address : str or None
        ``scheduler`` if given, else the value of the environment variable
        ``SK_MNIST_DASK_SCHEDULER`` if it is set and not empty, else None.

    Raises
    ------
    ValueError
        If the address is one Dask cannot parse (a connection to it would
        hang instead of failing). Checking needs the ``distributed`` extra.

    Examples
    --------
    >>> from sk_mnist.search import scheduler_address
    >>> scheduler_address("tcp://10.0.0.5:8786")
    'tcp://10.0.0.5:8786'
    """
    address = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if address is not None:
        comm = require("distributed.comm", "distributed", "searching on Dask")
        try:
            scheme, location = comm.parse_address(address)
            if scheme not in comm.registry.backends:
                raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(comm.registry.backends)}")
            if scheme in ("tcp", "tls"):
                comm.parse_host_port(location)
        except ValueError as exc:
            raise ValueError(
                f"bad Dask scheduler address {address!r} ({exc}); expected e.g. tcp://10.0.0.5:8786"
            ) from None
    return address


def _one_torch_thread():
    # Runs on every worker as it joins. A worker started with --nthreads T
    # runs T fits at once, each in its own thread; one torch thread per fit
    # keeps its torch on T cores. Fits with one thread are also bit-identical
    # whatever the cluster's shape. Dask's nanny already sets
    # OMP_NUM_THREADS=1 for its workers; this also covers workers without a
    # nanny or with another environment. torch applies the count to the
    # threads that have not yet run parallel code, i.e. the task threads.
    import torch

    torch.set_num_threads(1)


@contextmanager
def dask_backend(scheduler=None, *, scatter=None):
    """Run scikit-learn's parallel work, a search's fits, on a Dask cluster.

    Connects a :class:`distributed.Client` to the scheduler and makes
    joblib's Dask backend the default in the block, so that a
    :class:`~sklearn.model_selection.GridSearchCV` fitted there runs its
    fits on the cluster's workers (with ``n_jobs`` ignored: every worker
    thread takes fits). Each fit uses one torch thread, so a worker started
    with ``--nthreads T`` trains T networks at once on T cores, and the
    scores are those of a local search whose fits have one thread each
    (``n_jobs`` equal to the number of cores, or a serial search after
    ``torch.set_num_threads(1)``). The refit of the best candidate runs
    here, after the block's fits.

    Parameters
    ----------
    scheduler : str, default=None
        The scheduler's address, e.g. ``"tcp://10.0.0.5:8786"``; None reads
        the ``SK_MNIST_DASK_SCHEDULER`` environment variable.
    scatter : list of array-like, default=None
        Data to send to every worker once, on entering the block, and to
        pass by reference to every task that takes it (the very objects:
        the ``X`` and ``y`` given to ``fit``). Without it, joblib sends each
        large argument once per search to one worker, and other workers copy
        it from there.

    Yields
    ------
    client : distributed.Client
        The connected client, closed on leaving the block.

    Raises
    ------
    ValueError
        If no scheduler is given or named by the environment.
    ConnectionError
        If the scheduler cannot be reached.
    ImportError
        If dask or distributed is not installed.

    See Also
    --------
    fit_search : Fit a search here or, given a scheduler, on Dask.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.search import dask_backend, make_search
    >>> X, y = load_mnist(return_X_y=True)
    >>> search = make_search(max_epochs=5)
    >>> with dask_backend("tcp://10.0.0.5:8786", scatter=[X, y]):  # doctest: +SKIP
    ...     search.fit(X, y)
    """
    address = scheduler_address(scheduler)
    if address is None:
        raise ValueError(
            f"No Dask scheduler: pass its address (e.g. 'tcp://10.0.0.5:8786') or set {SCHEDULER_ENV}."
        )
    distributed = require("distributed", "distributed", "searching on Dask")
    try:
        client = distributed.Client(address, set_as_default=False)
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"Cannot connect to the Dask scheduler at {address!r}: {exc}") from exc
    with client:
        client.register_worker_callbacks(_one_torch_thread)
        with joblib.parallel_config(backend="dask", client=client, scatter=scatter):
            yield client


def fit_search(search, X, y, *, scheduler=None):
    """Fit a search on this machine or, if a scheduler is named, on Dask.

    Parameters
    ----------
    search : sklearn.model_selection.GridSearchCV
        Or any estimator whose fits run through joblib.
    X : array-like of shape (n_samples, n_features)
        Training images.
    y : array-like of shape (n_samples,)
        Their labels.
    scheduler : str, default=None
        A Dask scheduler's address. If neither it nor the environment
        variable ``SK_MNIST_DASK_SCHEDULER`` names one, the search runs here
        with its own ``n_jobs``; otherwise in :func:`dask_backend`, with
        ``X`` and ``y`` sent to every worker once.

    Returns
    -------
    search : sklearn.model_selection.GridSearchCV
        The fitted search.

    See Also
    --------
    make_search : The search over the regularization grid.
    dask_backend : The Dask connection.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.search import fit_search, make_search
    >>> X, y = load_mnist(return_X_y=True)
    >>> search = make_search({"cnn__dropout": [0.25, 0.5]}, cv=2, max_epochs=1)
    >>> search = fit_search(search, X[:400], y[:400])
    >>> search.n_splits_, search.cv_results_["mean_test_score"].shape
    (2, (2,))
    """
    address = scheduler_address(scheduler)
    if address is None:
        return search.fit(X, y)
    with dask_backend(address, scatter=[X, y]):
        return search.fit(X, y)


def _param_columns(cv_results):
    return [key for key in cv_results if key.startswith("param_")]


def ranked_results(cv_results):
    """The candidates of a search, best first.

    Parameters
    ----------
    cv_results : dict
        The ``cv_results_`` of a single-metric search.

    Returns
    -------
    table : pandas.DataFrame
        One row per candidate, indexed by its position in ``cv_results``
        (``candidate``), sorted by rank: ``rank_test_score``, one column per
        parameter searched, ``mean_test_score``, ``std_test_score`` and
        ``mean_fit_time`` (seconds).

    See Also
    --------
    plot_search : The same scores as a heatmap.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.search import ranked_results
    >>> X, y = load_mnist(return_X_y=True)
    >>> search = GridSearchCV(KNeighborsClassifier(), {"n_neighbors": [1, 5, 9]}).fit(X[:1000], y[:1000])
    >>> table = ranked_results(search.cv_results_)
    >>> table[["rank_test_score", "n_neighbors", "mean_test_score"]]  # doctest: +NORMALIZE_WHITESPACE
               rank_test_score  n_neighbors  mean_test_score
    candidate
    0                        1            1            0.862
    1                        2            5            0.850
    2                        3            9            0.843
    """
    pd = require("pandas", "report", "tables and plots of searches")
    params = _param_columns(cv_results)
    columns = ["rank_test_score", *params, "mean_test_score", "std_test_score", "mean_fit_time"]
    table = pd.DataFrame({column: cv_results[column] for column in columns})
    table = table.rename(columns={column: column.removeprefix("param_") for column in params})
    table.index.name = "candidate"
    return table.sort_values("rank_test_score", kind="stable")


def plot_search(cv_results, path=None, *, score_name="accuracy", ax=None):
    """Draw the mean cross-validated score of every candidate as a heatmap.

    The parameters that vary are split into two groups: each row of the
    heatmap is a combination of the first group's values, each column one of
    the second's; each cell shows the candidate's mean score, and the best
    candidate is outlined.

    Parameters
    ----------
    cv_results : dict
        The ``cv_results_`` of a single-metric search.
    path : str or path-like, default=None
        If given, the figure is saved there (format from the extension).
    score_name : str, default="accuracy"
        What the score measures, for the labels.
    ax : matplotlib.axes.Axes, default=None
        Where to draw (a notebook's or a script's pyplot axes, say); None
        draws on a new figure made without pyplot.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure drawn on.

    See Also
    --------
    ranked_results : The same scores as a table.

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.search import plot_search
    >>> X, y = load_mnist(return_X_y=True)
    >>> grid = {"n_neighbors": [1, 5], "weights": ["uniform", "distance"], "p": [1, 2]}
    >>> search = GridSearchCV(KNeighborsClassifier(), grid, cv=3).fit(X[:600], y[:600])
    >>> fig = plot_search(search.cv_results_)
    >>> [label.get_text() for label in fig.axes[0].get_yticklabels()]
    ['n_neighbors=1, p=1', 'n_neighbors=1, p=2', 'n_neighbors=5, p=1', 'n_neighbors=5, p=2']
    >>> [label.get_text() for label in fig.axes[0].get_xticklabels()]
    ['weights=uniform', 'weights=distance']
    """
    Figure = require("matplotlib.figure", "report", "tables and plots of searches").Figure
    Rectangle = require("matplotlib.patches", "report", "tables and plots of searches").Rectangle
    ticker = require("matplotlib.ticker", "report", "tables and plots of searches")
    table = ranked_results(cv_results)
    params = [column.removeprefix("param_") for column in _param_columns(cv_results)]
    varied = [name for name in params if len(set(map(str, table[name]))) > 1]
    half = (len(varied) + 1) // 2
    by_row, by_column = varied[:half], varied[half:]

    def label(names, row):
        # The last part of a routed name, e.g. "dropout" for "cnn__dropout".
        return ", ".join(f"{name.rsplit('__', 1)[-1]}={table.at[row, name]}" for name in names)

    # Rows and columns in the order of the candidates, which is the grid's.
    candidates = sorted(table.index)
    row_of = {i: label(by_row, i) for i in candidates}
    column_of = {i: label(by_column, i) for i in candidates}
    row_labels, column_labels = list(dict.fromkeys(row_of.values())), list(dict.fromkeys(column_of.values()))
    scores = np.full((len(row_labels), len(column_labels)), np.nan)
    for i in candidates:
        scores[row_labels.index(row_of[i]), column_labels.index(column_of[i])] = table.at[
            i, "mean_test_score"
        ]

    if ax is None:
        size = (2.5 + 1.3 * len(column_labels), 1.6 + 0.45 * len(row_labels))
        ax = Figure(figsize=size, layout="constrained").subplots()
    fig = ax.figure
    image = ax.imshow(np.ma.masked_invalid(scores), cmap="viridis", aspect="auto")
    colorbar = fig.colorbar(image, ax=ax, label=f"mean CV {score_name}")
    as_percent = np.nanmin(scores) >= 0 and np.nanmax(scores) <= 1
    if as_percent:  # the colour bar in the cells' unit
        colorbar.ax.yaxis.set_major_formatter(ticker.PercentFormatter(xmax=1))
    middle = np.nanmean([np.nanmin(scores), np.nanmax(scores)])
    for (r, c), score in np.ndenumerate(scores):
        if not np.isnan(score):
            text = f"{score:.2%}" if as_percent else f"{score:.4g}"
            # Dark text on the light (high) end of viridis, light text on the dark end.
            color = "black" if score > middle else "white"
            ax.text(c, r, text, ha="center", va="center", fontsize=8, color=color)
    best = table.index[0]
    corner = (column_labels.index(column_of[best]) - 0.5, row_labels.index(row_of[best]) - 0.5)
    ax.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(len(column_labels)), column_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    n_splits = sum(key.startswith("split") and key.endswith("_test_score") for key in cv_results)
    ax.set_title(f"Mean {score_name} over {n_splits} CV folds (best outlined)")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
