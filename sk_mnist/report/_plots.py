"""The report's figures, drawn on matplotlib Figures without pyplot's global state."""

import numpy as np

from .._images import canvas_shape
from .._optional import require


def _matplotlib():
    # Imported when a figure is drawn: importing sk_mnist.report needs no matplotlib.
    figure = require("matplotlib.figure", "report", "sk_mnist.report")
    return figure.Figure, require("matplotlib.ticker", "report", "sk_mnist.report")


__all__ = [
    "plot_accuracy_vs_fit_time",
    "plot_confused_pairs",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_misclassified",
]


def plot_accuracy_vs_fit_time(comparison):
    """Test accuracy (with its confidence interval) against fit time, log scale."""
    table = comparison.table
    Figure, ticker = _matplotlib()
    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    accuracy = 100 * table["accuracy"]
    errors = 100 * np.vstack([table["accuracy"] - table["ci_low"], table["ci_high"] - table["accuracy"]])
    ax.errorbar(table["fit_time"], accuracy, yerr=errors, fmt="o", capsize=3)
    # Labels alternate above and below their points, in order of fit time,
    # so that models of similar cost do not print over each other.
    for rank, name in enumerate(table["fit_time"].sort_values().index):
        ax.annotate(
            f"{name} (n={table.loc[name, 'train_size']:,})",
            (table.loc[name, "fit_time"], accuracy[name]),
            textcoords="offset points",
            xytext=(6, 5 if rank % 2 == 0 else -12),
            fontsize=8,
        )
    ax.set_xscale("log")
    ax.set_xlabel("fit time (s, log scale)")
    ax.set_ylabel("test accuracy")
    ax.yaxis.set_major_formatter(ticker.PercentFormatter(decimals=1))
    ax.set_title(f"Test accuracy ({comparison.confidence:.0%} interval) vs fit time on n training images")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def plot_confusion_matrix(comparison, name):
    """One model's confusion matrix, errors shaded on their own scale."""
    matrix = comparison.confusion_matrices[name]
    labels = [str(label) for label in comparison.classes]
    # The diagonal (hundreds of correct answers) would wash out the errors'
    # colour scale: shade the errors only and print every count.
    errors = matrix.astype(float)
    np.fill_diagonal(errors, np.nan)
    Figure, ticker = _matplotlib()
    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(errors, cmap="Reds", vmin=0)
    fig.colorbar(image, ax=ax, label="errors", ticks=ticker.MaxNLocator(integer=True))
    ceiling = np.nanmax(errors) if np.isfinite(errors).any() else 0
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
    ax.set_title(f"{name}: {int(matrix.sum() - np.trace(matrix))} errors")
    return fig


def _confused_pairs(comparison, top=12):
    """The ``(true, predicted)`` pairs with the most errors over all models.

    Returns a list of ``((true, predicted), {model: count})``, worst first.
    """
    total = sum(comparison.confusion_matrices.values()).astype(float)
    np.fill_diagonal(total, 0)
    order = np.argsort(total, axis=None, kind="stable")[::-1][:top]
    pairs = []
    for flat in order:
        row, col = np.unravel_index(flat, total.shape)
        if total[row, col] == 0:
            break
        counts = {name: int(matrix[row, col]) for name, matrix in comparison.confusion_matrices.items()}
        pairs.append(((comparison.classes[row], comparison.classes[col]), counts))
    return pairs


def plot_confused_pairs(comparison, top=12):
    """Errors per model for the most-confused (true, predicted) digit pairs."""
    pairs = _confused_pairs(comparison, top)
    names = list(comparison.confusion_matrices)
    counts = np.array([[per_model[name] for name in names] for _, per_model in pairs]).reshape(-1, len(names))
    Figure, ticker = _matplotlib()
    fig = Figure(figsize=(1.2 + 0.75 * len(names), 1.2 + 0.35 * max(len(pairs), 1)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Reds", aspect="auto", vmin=0)
    for (row, col), count in np.ndenumerate(counts):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=8,
            color="white" if count > counts.max() / 2 else "black",
        )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(pairs)), [f"{true} → {predicted}" for (true, predicted), _ in pairs])
    ax.set_ylabel("true → predicted")
    ax.set_title("Most-confused digit pairs (test errors)")
    fig.colorbar(image, ax=ax, label="errors", ticks=ticker.MaxNLocator(integer=True))
    return fig


def plot_misclassified(comparison, name, limit=40):
    """A gallery of the test digits one model gets wrong, with true and predicted labels."""
    y_pred = comparison.predictions[name]
    wrong = np.flatnonzero(y_pred != comparison.y_test)[:limit]
    n_cols = 10
    n_rows = max(1, -(-len(wrong) // n_cols))
    Figure, _ = _matplotlib()
    fig = Figure(figsize=(n_cols * 0.95, n_rows * 1.15 + 0.5), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    _, height, width = canvas_shape(comparison.X_test.shape[1])
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, index in zip(axes.flat, wrong):
        canvas = np.zeros(height * width)
        canvas[: comparison.X_test.shape[1]] = comparison.X_test[index]
        ax.imshow(canvas.reshape(height, width), cmap="gray_r")
        ax.set_title(f"{comparison.y_test[index]} → {y_pred[index]}", fontsize=9, color="firebrick")
    total = np.count_nonzero(y_pred != comparison.y_test)
    fig.suptitle(f"{name}: {len(wrong)} of its {total} misclassified test digits (true → predicted)")
    return fig


def plot_learning_curves(comparison):
    """Loss per epoch of every network trained, and validation accuracy where one was held out."""
    validated = any(
        epochs["valid_acc"].notna().any() for runs in comparison.histories.values() for epochs in runs
    )
    Figure, ticker = _matplotlib()
    fig = Figure(figsize=(10 if validated else 5.5, 3.8), layout="constrained")
    loss_ax, *acc_ax = fig.subplots(1, 2 if validated else 1, squeeze=False)[0]
    for name, histories in comparison.histories.items():
        for member, epochs in enumerate(histories):
            label = name if len(histories) == 1 else f"{name} #{member}"
            (line,) = loss_ax.plot(epochs.index, epochs["train_loss"], label=f"{label} train")
            if validated:
                loss_ax.plot(
                    epochs.index, epochs["valid_loss"], "--", color=line.get_color(), label=f"{label} valid"
                )
                acc_ax[0].plot(
                    epochs.index, 100 * epochs["valid_acc"], "o-", color=line.get_color(), label=label
                )
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.set_title("Loss (solid: training, dashed: validation)" if validated else "Training loss")
    for ax in acc_ax:
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.yaxis.set_major_formatter(ticker.PercentFormatter(decimals=1))
        ax.set_title("Validation accuracy")
    for ax in (loss_ax, *acc_ax):
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return fig
