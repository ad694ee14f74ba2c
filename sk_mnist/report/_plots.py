"""The report's figures: the displays, drawn on matplotlib Figures without pyplot's global state."""

import numpy as np

from .._optional import require
from ._displays import (
    AccuracyTimeDisplay,
    ConfusedPairsDisplay,
    ErrorMatrixDisplay,
    MisclassifiedDisplay,
    TrainingCurvesDisplay,
)

__all__ = [
    "plot_accuracy_vs_fit_time",
    "plot_confused_pairs",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_misclassified",
]


def _figure(display, n_axes=1):
    """A pyplot-free Figure of the display's size (times ``n_axes`` side by side), and its axes."""
    # Imported when a figure is drawn: importing sk_mnist.report needs no matplotlib.
    Figure = require("matplotlib.figure", "report", "sk_mnist.report").Figure
    width, height = display._figsize()
    fig = Figure(figsize=(width * n_axes, height), layout="constrained")
    return fig, fig.subplots(1, n_axes, squeeze=False)[0]


def plot_accuracy_vs_fit_time(comparison):
    """Test accuracy (with its confidence interval) against fit time, log scale."""
    display = AccuracyTimeDisplay(comparison.table, comparison.confidence)
    fig, (ax,) = _figure(display)
    display.plot(ax=ax)
    return fig


def error_scale(comparison):
    """The largest error count of any model in any cell: one colour scale for all matrices."""
    errors = [matrix - np.diag(np.diag(matrix)) for matrix in comparison.confusion_matrices.values()]
    return max(int(e.max()) for e in errors)


def plot_confusion_matrix(comparison, name, vmax=None):
    """One model's confusion matrix, errors shaded up to ``vmax`` (its own largest if None)."""
    display = ErrorMatrixDisplay(comparison.confusion_matrices[name], comparison.classes)
    fig, (ax,) = _figure(display)
    display.plot(name=name, ax=ax, vmax=vmax)
    return fig


def plot_confused_pairs(comparison, top=12):
    """Errors per model for the most-confused (true, predicted) digit pairs."""
    display = ConfusedPairsDisplay._of(
        comparison.y_test, comparison.predictions, labels=comparison.classes, top=top
    )
    fig, (ax,) = _figure(display)
    display.plot(ax=ax)
    return fig


def plot_misclassified(comparison, name, limit=40):
    """A gallery of the test digits one model gets wrong, with true and predicted labels."""
    display = MisclassifiedDisplay._of(
        comparison.X_test, comparison.y_test, comparison.predictions[name], limit=limit
    )
    fig, (ax,) = _figure(display)
    display.plot(name=name, ax=ax)
    return fig


def plot_learning_curves(comparison):
    """Loss per epoch of every network trained, and validation accuracy where one was held out."""
    display = TrainingCurvesDisplay(
        {
            name if len(runs) == 1 else f"{name} #{member}": epochs
            for name, runs in comparison.histories.items()
            for member, epochs in enumerate(runs)
        }
    )
    fig, axes = _figure(display, n_axes=2 if display._validated() else 1)
    for metric, ax in zip(("loss", "valid_acc"), axes):
        display.plot(metric=metric, ax=ax)
    return fig
