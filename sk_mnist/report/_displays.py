"""The report's figures as scikit-learn style Display objects, for notebooks and reports alike.

Each Display is made from a fitted estimator (``from_estimator``) or from
predictions (``from_predictions``), keeps what it shows as attributes, and
draws with ``plot``: on the matplotlib axes given, or on new pyplot axes (so
that a notebook shows the figure) when none are. Drawing sets ``ax_`` and
``figure_``. The report draws the same Displays on figures of its own.
"""

from numbers import Integral

import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.utils import check_scalar

from .._images import canvas_shape
from .._optional import require
from ._compare import _epochs, _fitted_networks

__all__ = [
    "AccuracyTimeDisplay",
    "ConfusedPairsDisplay",
    "ErrorMatrixDisplay",
    "MisclassifiedDisplay",
    "TrainingCurvesDisplay",
]


def _ticker():
    return require("matplotlib.ticker", "report", "sk_mnist.report's displays")


class _Display:
    """What every display shares: the axes it draws on, recorded as ``ax_`` and ``figure_``."""

    def _draw_on(self, ax):
        """``ax``, or new pyplot axes of the display's size (``_figsize()``) when it is None."""
        if ax is None:
            plt = require("matplotlib.pyplot", "report", "sk_mnist.report's displays")
            _, ax = plt.subplots(figsize=self._figsize(), layout="constrained")
        self.ax_, self.figure_ = ax, ax.figure
        return ax


class ErrorMatrixDisplay(_Display):
    """A confusion matrix whose colours show the errors only, every count printed.

    The diagonal (hundreds of correct answers per class) would wash out the
    colour scale of the errors: it is left white, its counts in bold.

    Parameters
    ----------
    confusion_matrix : ndarray of shape (n_classes, n_classes)
        Counts; rows are true classes, columns predicted ones.
    display_labels : array-like of shape (n_classes,)
        The classes, in the order of the rows.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        The axes drawn on.
    figure_ : matplotlib.figure.Figure
        The figure holding them.
    image_ : matplotlib.image.AxesImage
        The shaded errors.

    See Also
    --------
    sklearn.metrics.ConfusionMatrixDisplay : The display of scikit-learn, diagonal shaded too.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.report import ErrorMatrixDisplay
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> knn = KNeighborsClassifier().fit(X[:1000], y[:1000])
    >>> display = ErrorMatrixDisplay.from_estimator(knn, X[-500:], y[-500:])
    >>> display.ax_.get_title()
    '101 errors'
    """

    def __init__(self, confusion_matrix, display_labels):
        self.confusion_matrix = confusion_matrix
        self.display_labels = display_labels

    @classmethod
    def from_estimator(cls, estimator, X, y, *, name=None, ax=None, vmax=None):
        """Draw the errors of a fitted classifier on ``X``.

        Parameters
        ----------
        estimator : fitted classifier
            Has ``predict`` and ``classes_``.
        X : array-like of shape (n_samples, n_features)
            Images to predict.
        y : array-like of shape (n_samples,)
            Their true labels.
        name : str, default=None
            The model's name, for the title.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.
        vmax : float, default=None
            The error count of the darkest colour; the largest error count
            if None. Give several matrices the same to compare them by colour.

        Returns
        -------
        display : ErrorMatrixDisplay
            The display, drawn.
        """
        return cls.from_predictions(
            y, estimator.predict(X), labels=estimator.classes_, name=name, ax=ax, vmax=vmax
        )

    @classmethod
    def from_predictions(cls, y_true, y_pred, *, labels=None, name=None, ax=None, vmax=None):
        """Draw the errors of predictions.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_pred : array-like of shape (n_samples,)
            Predicted labels.
        labels : array-like of shape (n_classes,), default=None
            The classes, in order; those in ``y_true`` or ``y_pred`` if None.
        name : str, default=None
            The model's name, for the title.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.
        vmax : float, default=None
            The error count of the darkest colour; the largest if None.

        Returns
        -------
        display : ErrorMatrixDisplay
            The display, drawn.
        """
        if labels is None:
            labels = np.unique(np.concatenate([np.asarray(y_true), np.asarray(y_pred)]))
        matrix = confusion_matrix(y_true, y_pred, labels=labels)
        return cls(matrix, labels).plot(name=name, ax=ax, vmax=vmax)

    def _figsize(self):
        return 5.2, 4.6

    def plot(self, *, name=None, ax=None, vmax=None):
        """Draw the matrix.

        Parameters
        ----------
        name : str, default=None
            The model's name, for the title ("name: 12 errors").
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.
        vmax : float, default=None
            The error count of the darkest colour; the largest if None.

        Returns
        -------
        self : ErrorMatrixDisplay
            This display, drawn (``ax_`` and ``figure_`` set).
        """
        matrix = np.asarray(self.confusion_matrix)
        labels = [str(label) for label in self.display_labels]
        errors = matrix.astype(float)
        np.fill_diagonal(errors, np.nan)
        ceiling = np.nanmax(errors) if np.isfinite(errors).any() else 0
        ceiling = ceiling if vmax is None else vmax
        ax = self._draw_on(ax)
        self.image_ = ax.imshow(errors, cmap="Reds", vmin=0, vmax=max(ceiling, 1))
        self.figure_.colorbar(self.image_, ax=ax, label="errors", ticks=_ticker().MaxNLocator(integer=True))
        for (row, col), count in np.ndenumerate(matrix):
            dark = row != col and count > ceiling / 2
            ax.text(
                col,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
                fontweight="bold" if row == col else "normal",
            )
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        errors = f"{int(matrix.sum() - np.trace(matrix))} errors"
        ax.set_title(errors if name is None else f"{name}: {errors}")
        return self


class ConfusedPairsDisplay(_Display):
    """Errors per model for the (true, predicted) pairs most often confused.

    The pairs are ranked by their errors over all the models together, and
    each model's errors on each pair printed in a heatmap of pairs by models:
    where the models err alike, and where one errs alone.

    Parameters
    ----------
    pairs : list of tuple
        ``(true, predicted)`` label pairs, most errors (over all models) first.
    counts : ndarray of shape (n_pairs, n_models)
        Each model's errors on each pair.
    model_names : list of str
        The models, in the order of the columns.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        The axes drawn on.
    figure_ : matplotlib.figure.Figure
        The figure holding them.

    See Also
    --------
    ErrorMatrixDisplay : All the errors of one model.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sklearn.linear_model import RidgeClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.report import ConfusedPairsDisplay
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> models = {"knn": KNeighborsClassifier(), "ridge": RidgeClassifier()}
    >>> models = {name: model.fit(X[:1000], y[:1000]) for name, model in models.items()}
    >>> display = ConfusedPairsDisplay.from_estimators(models, X[-500:], y[-500:], top=3)
    >>> display.pairs
    [(9, 4), (9, 7), (8, 1)]
    >>> display.counts.tolist()  # errors of knn, ridge
    [[8, 9], [9, 7], [6, 6]]
    """

    def __init__(self, pairs, counts, model_names):
        self.pairs = pairs
        self.counts = counts
        self.model_names = model_names

    @classmethod
    def from_estimators(cls, estimators, X, y, *, top=12, ax=None):
        """Draw the pairs several fitted classifiers confuse most on ``X``.

        Parameters
        ----------
        estimators : dict of str to fitted classifier
            The models, by name.
        X : array-like of shape (n_samples, n_features)
            Images to predict.
        y : array-like of shape (n_samples,)
            Their true labels.
        top : int, default=12
            How many pairs to show.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        display : ConfusedPairsDisplay
            The display, drawn.
        """
        predictions = {name: estimator.predict(X) for name, estimator in estimators.items()}
        return cls.from_predictions(y, predictions, top=top, ax=ax)

    @classmethod
    def from_predictions(cls, y_true, y_preds, *, labels=None, top=12, ax=None):
        """Draw the pairs that several models' predictions confuse most.

        Parameters
        ----------
        y_true : array-like of shape (n_samples,)
            True labels.
        y_preds : dict of str to array-like of shape (n_samples,)
            Each model's predicted labels, by name.
        labels : array-like of shape (n_classes,), default=None
            The classes; those in ``y_true`` or the predictions if None.
        top : int, default=12
            How many pairs to show.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        display : ConfusedPairsDisplay
            The display, drawn.
        """
        return cls._of(y_true, y_preds, labels=labels, top=top).plot(ax=ax)

    @classmethod
    def _of(cls, y_true, y_preds, *, labels, top):
        """The display of :meth:`from_predictions`, not drawn yet."""
        check_scalar(top, "top", Integral, min_val=1)
        if labels is None:
            labels = np.unique(np.concatenate([np.asarray(y_true), *map(np.asarray, y_preds.values())]))
        matrices = {name: confusion_matrix(y_true, y_pred, labels=labels) for name, y_pred in y_preds.items()}
        total = sum(matrices.values()).astype(float)
        np.fill_diagonal(total, 0)
        order = np.argsort(total, axis=None, kind="stable")[::-1][:top]
        cells = [np.unravel_index(flat, total.shape) for flat in order]
        cells = [(row, col) for row, col in cells if total[row, col] > 0]
        labels = np.asarray(labels)
        pairs = [(labels[row].item(), labels[col].item()) for row, col in cells]
        counts = np.array([[int(m[row, col]) for m in matrices.values()] for row, col in cells], dtype=int)
        return cls(pairs, counts.reshape(len(cells), len(matrices)), list(matrices))

    def _figsize(self):
        return 1.2 + 0.75 * len(self.model_names), 1.2 + 0.35 * max(len(self.pairs), 1)

    def plot(self, *, ax=None):
        """Draw the pairs as a heatmap, pairs by models.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        self : ConfusedPairsDisplay
            This display, drawn (``ax_`` and ``figure_`` set).
        """
        names, counts = self.model_names, self.counts
        ax = self._draw_on(ax)
        ax.set_title("Most-confused digit pairs (test errors)")
        if not self.pairs:
            ax.text(0.5, 0.5, "no errors", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return self
        image = ax.imshow(counts, cmap="Reds", aspect="auto", vmin=0)
        for (row, col), count in np.ndenumerate(counts):
            dark = count > counts.max() / 2
            ax.text(
                col, row, str(count), ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
        ax.set_yticks(range(len(self.pairs)), [f"{true} → {predicted}" for true, predicted in self.pairs])
        ax.set_ylabel("true → predicted")
        self.figure_.colorbar(image, ax=ax, label="errors", ticks=_ticker().MaxNLocator(integer=True))
        return self


class MisclassifiedDisplay(_Display):
    """A gallery of misclassified digits, each with its true and predicted label.

    The digits are drawn as one image, ten to a row, in the order of the
    data, each under its labels: what a model gets wrong, and whether a
    person would have.

    Parameters
    ----------
    images : ndarray of shape (n_shown, height, width)
        The digits shown.
    y_true : ndarray of shape (n_shown,)
        Their true labels.
    y_pred : ndarray of shape (n_shown,)
        The labels predicted for them.
    n_errors : int
        How many digits were misclassified in all (at least ``n_shown``).

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        The axes drawn on: the gallery is one image.
    figure_ : matplotlib.figure.Figure
        The figure holding them.

    See Also
    --------
    ErrorMatrixDisplay : The errors counted by pair of classes.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.report import MisclassifiedDisplay
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> knn = KNeighborsClassifier().fit(X[:1000], y[:1000])
    >>> display = MisclassifiedDisplay.from_estimator(knn, X[-500:], y[-500:], limit=20)
    >>> display.images.shape, display.n_errors
    ((20, 28, 28), 101)
    """

    def __init__(self, images, y_true, y_pred, n_errors):
        self.images = images
        self.y_true = y_true
        self.y_pred = y_pred
        self.n_errors = n_errors

    @classmethod
    def from_estimator(cls, estimator, X, y, *, limit=40, name=None, ax=None):
        """Draw the first digits of ``X`` that a fitted classifier gets wrong.

        Parameters
        ----------
        estimator : fitted classifier
            Has ``predict``.
        X : array-like of shape (n_samples, n_features) or (n_samples, height, width)
            Images, as rows (on the smallest square canvas that holds them,
            as the classifiers read them) or as images.
        y : array-like of shape (n_samples,)
            Their true labels.
        limit : int, default=40
            The most digits shown, in the order of ``X``.
        name : str, default=None
            The model's name, for the title.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        display : MisclassifiedDisplay
            The display, drawn.
        """
        return cls.from_predictions(X, y, estimator.predict(X), limit=limit, name=name, ax=ax)

    @classmethod
    def from_predictions(cls, X, y_true, y_pred, *, limit=40, name=None, ax=None):
        """Draw the first digits of ``X`` whose predicted label is wrong.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, height, width)
            Images, as rows or as images.
        y_true : array-like of shape (n_samples,)
            Their true labels.
        y_pred : array-like of shape (n_samples,)
            The predicted labels.
        limit : int, default=40
            The most digits shown, in the order of ``X``.
        name : str, default=None
            The model's name, for the title.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        display : MisclassifiedDisplay
            The display, drawn.
        """
        return cls._of(X, y_true, y_pred, limit=limit).plot(name=name, ax=ax)

    @classmethod
    def _of(cls, X, y_true, y_pred, *, limit):
        """The display of :meth:`from_predictions`, not drawn yet."""
        check_scalar(limit, "limit", Integral, min_val=1)
        X, y_true, y_pred = np.asarray(X), np.asarray(y_true), np.asarray(y_pred)
        if X.ndim == 2:  # rows, on the canvas the classifiers put them on
            _, height, width = canvas_shape(X.shape[1])
            canvas = np.zeros((len(X), height * width), dtype=X.dtype)
            canvas[:, : X.shape[1]] = X
            X = canvas.reshape(len(X), height, width)
        if X.ndim != 3:
            raise ValueError(f"X must hold rows or images of one channel; got an array of shape {X.shape}.")
        wrong = np.flatnonzero(y_pred != y_true)
        shown = wrong[:limit]
        return cls(X[shown], y_true[shown], y_pred[shown], len(wrong))

    #: Digits per row of the gallery.
    n_cols = 10

    def _figsize(self):
        n_rows = max(1, -(-len(self.images) // self.n_cols))
        return self.n_cols * 0.95, n_rows * 1.15 + 0.5

    def plot(self, *, name=None, ax=None):
        """Draw the gallery: one image of the digits, ten to a row.

        Parameters
        ----------
        name : str, default=None
            The model's name, for the title.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        self : MisclassifiedDisplay
            This display, drawn (``ax_`` and ``figure_`` set).
        """
        n_cols = self.n_cols
        n_shown, height, width = self.images.shape
        n_rows = max(1, -(-n_shown // n_cols))
        band = 10  # pixels above each digit for its labels
        cell_h, cell_w = height + band, width + 4
        background = self.images.min() if n_shown else 0
        mosaic = np.full((n_rows * cell_h, n_cols * cell_w), background, dtype=float)
        ax = self._draw_on(ax)
        for i, (image, true, predicted) in enumerate(zip(self.images, self.y_true, self.y_pred)):
            top, left = (i // n_cols) * cell_h, (i % n_cols) * cell_w + 2
            mosaic[top + band : top + band + height, left : left + width] = image
            ax.text(
                left + width / 2,
                top + band - 1,
                f"{true} → {predicted}",
                ha="center",
                va="bottom",
                fontsize=8,
                color="firebrick",
            )
        ax.imshow(mosaic, cmap="gray_r", interpolation="nearest")
        ax.set_axis_off()
        shown = f"{n_shown} of {self.n_errors} misclassified digits (true → predicted)"
        ax.set_title(shown if name is None else f"{name}: {shown}")
        return self


class TrainingCurvesDisplay(_Display):
    """Loss or validation accuracy per epoch of the networks inside fitted models.

    One line per network (a model may hold several: a pipeline's step, an
    ensemble's members): training loss solid and validation loss dashed, or
    validation accuracy, against the epoch.

    Parameters
    ----------
    histories : dict of str to pandas.DataFrame
        One table of epochs per network (``train_loss``, ``valid_loss``,
        ``valid_acc``), by label.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        The axes drawn on.
    figure_ : matplotlib.figure.Figure
        The figure holding them.

    See Also
    --------
    sklearn.model_selection.LearningCurveDisplay : Scores against training-set size.

    Examples
    --------
    >>> from sk_mnist import MNISTCNNClassifier, load_mnist
    >>> from sk_mnist.report import TrainingCurvesDisplay
    >>> X, y = load_mnist(return_X_y=True)
    >>> clf = MNISTCNNClassifier(max_epochs=3, random_state=0).fit(X[:500], y[:500])
    >>> display = TrainingCurvesDisplay.from_estimator(clf)
    >>> [line.get_label() for line in display.ax_.get_lines()]
    ['MNISTCNNClassifier train']
    """

    def __init__(self, histories):
        self.histories = histories

    @classmethod
    def from_estimator(cls, estimator, *, metric="loss", name=None, ax=None):
        """Draw the training curves of the skorch networks inside a fitted model.

        Parameters
        ----------
        estimator : fitted estimator
            A skorch network, or a pipeline or voting ensemble holding some.
        metric : {"loss", "valid_acc"}, default="loss"
            What to draw: training loss (solid) and validation loss (dashed,
            where a validation set was held out), or validation accuracy.
        name : str, default=None
            The model's label; the class name of the estimator if None.
            Several networks are numbered.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        display : TrainingCurvesDisplay
            The display, drawn.
        """
        name = name or type(estimator).__name__
        nets = list(_fitted_networks(estimator))
        if not nets:
            raise ValueError(f"{name} holds no fitted skorch network to draw the training curves of.")
        labels = [name] if len(nets) == 1 else [f"{name} #{i}" for i in range(len(nets))]
        return cls(dict(zip(labels, map(_epochs, nets)))).plot(metric=metric, ax=ax)

    def _figsize(self):
        return 5.5, 3.8

    def _validated(self):
        """Whether some network held out a validation set."""
        return any(epochs["valid_acc"].notna().any() for epochs in self.histories.values())

    def plot(self, *, metric="loss", ax=None):
        """Draw one metric per epoch for every network.

        Parameters
        ----------
        metric : {"loss", "valid_acc"}, default="loss"
            Training loss (solid) and validation loss (dashed, where there is
            one), or validation accuracy.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        self : TrainingCurvesDisplay
            This display, drawn (``ax_`` and ``figure_`` set).
        """
        if metric not in ("loss", "valid_acc"):
            raise ValueError(f"metric must be 'loss' or 'valid_acc'; got {metric!r}.")
        ax = self._draw_on(ax)
        ticker = _ticker()
        for label, epochs in self.histories.items():
            if metric == "valid_acc":
                ax.plot(epochs.index, 100 * epochs["valid_acc"], "o-", label=label)
                continue
            (line,) = ax.plot(epochs.index, epochs["train_loss"], label=f"{label} train")
            if epochs["valid_loss"].notna().any():
                ax.plot(
                    epochs.index, epochs["valid_loss"], "--", color=line.get_color(), label=f"{label} valid"
                )
        if metric == "valid_acc":
            ax.set_ylabel("validation accuracy")
            ax.yaxis.set_major_formatter(ticker.PercentFormatter(decimals=1))
            ax.set_title("Validation accuracy")
        else:
            ax.set_ylabel("loss")
            ax.set_title(
                "Loss (solid: training, dashed: validation)" if self._validated() else "Training loss"
            )
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        return self


class AccuracyTimeDisplay(_Display):
    """Test accuracy, with its confidence interval, against fit time (log scale).

    One point per model, labelled with its name and its number of training
    images: the cost of each model's accuracy at a glance.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per model, indexed by name: ``accuracy``, ``ci_low``,
        ``ci_high``, ``fit_time`` and ``train_size``, as
        :attr:`Comparison.table` has them.
    confidence : float
        The coverage of the intervals, for the title.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        The axes drawn on.
    figure_ : matplotlib.figure.Figure
        The figure holding them.

    See Also
    --------
    compare : Measures the models this draws.

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.report import AccuracyTimeDisplay, compare
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> models = {"prior": DummyClassifier(), "knn": KNeighborsClassifier()}
    >>> comparison = compare(models, X[:500], y[:500], X[-100:], y[-100:])
    >>> display = AccuracyTimeDisplay.from_comparison(comparison)
    >>> display.ax_.get_xscale()
    'log'
    """

    def __init__(self, table, confidence):
        self.table = table
        self.confidence = confidence

    @classmethod
    def from_comparison(cls, comparison, *, ax=None):
        """Draw the models of a :class:`Comparison`.

        Parameters
        ----------
        comparison : Comparison
            What :func:`compare` measured.
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        display : AccuracyTimeDisplay
            The display, drawn.
        """
        return cls(comparison.table, comparison.confidence).plot(ax=ax)

    def _figsize(self):
        return 10, 5

    def plot(self, *, ax=None):
        """Draw accuracy against fit time, one labelled point per model.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, default=None
            Where to draw; new pyplot axes if None.

        Returns
        -------
        self : AccuracyTimeDisplay
            This display, drawn (``ax_`` and ``figure_`` set).
        """
        table = self.table
        ax = self._draw_on(ax)
        accuracy = 100 * table["accuracy"]
        errors = 100 * np.vstack([table["accuracy"] - table["ci_low"], table["ci_high"] - table["accuracy"]])
        ax.errorbar(table["fit_time"], accuracy, yerr=errors, fmt="o", capsize=3)
        ax.set_xscale("log")
        # Labels alternate above and below their points, in order of fit time,
        # so that models of similar cost do not print over each other; those in
        # the right half of the axis go to the left of their points, so that the
        # slowest model's label stays inside the frame.
        times = table["fit_time"].to_numpy(dtype=float)
        low, high = np.log(times.min()), np.log(times.max())
        for rank, name in enumerate(table["fit_time"].sort_values().index):
            time = table.loc[name, "fit_time"]
            right = high > low and (np.log(time) - low) / (high - low) > 0.5
            ax.annotate(
                f"{name} (n={table.loc[name, 'train_size']:,})",
                (time, accuracy[name]),
                textcoords="offset points",
                xytext=(-6 if right else 6, 5 if rank % 2 == 0 else -12),
                ha="right" if right else "left",
                fontsize=8,
            )
        ax.set_xlabel("fit time (s, log scale)")
        ax.set_ylabel("test accuracy")
        ax.yaxis.set_major_formatter(_ticker().PercentFormatter(decimals=1))
        ax.set_title(f"Test accuracy ({self.confidence:.0%} interval) vs fit time on n training images")
        ax.grid(True, which="both", alpha=0.3)
        return self
