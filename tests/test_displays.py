"""The report's figures as displays: what they compute, and what they draw."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline

from sk_mnist import MNISTCNNClassifier, make_cnn_ensemble
from sk_mnist.preprocessing import PixelScaler
from sk_mnist.report import (
    AccuracyTimeDisplay,
    ConfusedPairsDisplay,
    ErrorMatrixDisplay,
    MisclassifiedDisplay,
    TrainingCurvesDisplay,
)


@pytest.fixture
def ax():
    return Figure().subplots()


@pytest.fixture(autouse=True)
def close_pyplot_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_error_matrix_shades_the_errors_only_and_prints_every_count(ax):
    display = ErrorMatrixDisplay.from_predictions([0, 0, 1, 1, 2], [0, 1, 1, 2, 2], name="m", ax=ax)
    np.testing.assert_array_equal(display.confusion_matrix, [[1, 1, 0], [0, 1, 1], [0, 0, 1]])
    assert display.ax_ is ax and display.figure_ is ax.figure
    shaded = display.image_.get_array()
    assert shaded.mask.diagonal().all() and shaded[0, 1] == 1  # the diagonal is not coloured
    assert display.image_.get_clim() == (0, 1)
    texts = {(t.get_position(), t.get_text(), t.get_fontweight()) for t in ax.texts}
    assert ((0, 0), "1", "bold") in texts and ((1, 0), "1", "normal") in texts and len(ax.texts) == 9
    assert ax.get_title() == "m: 2 errors"


def test_error_matrices_can_share_one_colour_scale(ax):
    display = ErrorMatrixDisplay.from_predictions([0, 1], [1, 1], labels=[0, 1, 2], vmax=7, ax=ax)
    assert display.confusion_matrix.shape == (3, 3)  # a class never seen still has its row
    assert display.image_.get_clim() == (0, 7) and ax.get_title() == "1 errors"


def test_from_estimator_is_from_predictions_with_the_estimators_classes(ax):
    X, y = np.zeros((6, 4)), np.array([0, 0, 0, 1, 1, 2])
    prior = DummyClassifier().fit(X, y)  # always predicts 0
    display = ErrorMatrixDisplay.from_estimator(prior, X, y, ax=ax)
    np.testing.assert_array_equal(display.display_labels, [0, 1, 2])
    np.testing.assert_array_equal(display.confusion_matrix, [[3, 0, 0], [2, 0, 0], [1, 0, 0]])


def test_without_axes_a_display_draws_on_a_new_pyplot_figure():
    import matplotlib.pyplot as plt

    display = ErrorMatrixDisplay.from_predictions([0, 1], [1, 1])
    assert display.figure_ is plt.gcf()
    assert tuple(display.figure_.get_size_inches()) == display._figsize()


def test_confused_pairs_rank_pairs_by_errors_over_all_models(ax):
    y_true = np.array([3, 3, 3, 5, 5, 8])
    predictions = {"a": np.array([5, 5, 3, 3, 5, 8]), "b": np.array([5, 3, 3, 5, 5, 8])}
    display = ConfusedPairsDisplay.from_predictions(y_true, predictions, ax=ax)
    assert display.pairs == [(3, 5), (5, 3)] and display.model_names == ["a", "b"]
    np.testing.assert_array_equal(display.counts, [[2, 1], [1, 0]])
    assert [label.get_text() for label in ax.get_yticklabels()] == ["3 → 5", "5 → 3"]
    top = ConfusedPairsDisplay.from_predictions(y_true, predictions, top=1, ax=Figure().subplots())
    assert top.pairs == [(3, 5)]
    right = ConfusedPairsDisplay.from_predictions(y_true, {"a": y_true}, ax=Figure().subplots())
    assert right.pairs == [] and right.counts.shape == (0, 1)
    assert [t.get_text() for t in right.ax_.texts] == ["no errors"] and not right.ax_.images


def test_confused_pairs_of_string_labels(ax):
    display = ConfusedPairsDisplay.from_predictions(["one", "two"], {"m": ["two", "two"]}, ax=ax)
    assert display.pairs == [("one", "two")]


@pytest.mark.parametrize("top, error", [(0, ValueError), (1.5, TypeError)])
def test_a_bad_count_is_refused(top, error):
    with pytest.raises(error, match="top"):
        ConfusedPairsDisplay.from_predictions([0], {"m": [1]}, top=top)
    with pytest.raises(error, match="limit"):
        MisclassifiedDisplay.from_predictions(np.zeros((1, 4)), [0], [1], limit=top)


def test_misclassified_digits_are_shown_in_order_up_to_the_limit(ax):
    X = np.arange(5 * 10).reshape(5, 10)  # rows of 10 pixels: a 4x4 canvas, zero-padded
    y_true, y_pred = np.array([1, 2, 3, 4, 5]), np.array([1, 0, 3, 0, 0])
    display = MisclassifiedDisplay.from_predictions(X, y_true, y_pred, limit=2, name="m", ax=ax)
    assert display.images.shape == (2, 4, 4) and display.n_errors == 3
    np.testing.assert_array_equal(display.images[0].ravel(), [*X[1], 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(display.y_true, [2, 4])
    assert [t.get_text() for t in ax.texts] == ["2 → 0", "4 → 0"]
    assert ax.get_title() == "m: 2 of 3 misclassified digits (true → predicted)"
    # One image: a row of ten cells, each the digit and a band for its labels.
    assert ax.images[0].get_array().shape == (4 + 10, 10 * (4 + 4))


def test_misclassified_digits_given_as_images_or_not(ax):
    images = np.random.default_rng(0).random((3, 5, 5))
    display = MisclassifiedDisplay.from_predictions(images, [0, 0, 0], [1, 0, 1], ax=ax)
    np.testing.assert_array_equal(display.images, images[[0, 2]])
    with pytest.raises(
        ValueError, match=r"rows or images of one channel; got an array of shape \(3, 1, 5, 5\)"
    ):
        MisclassifiedDisplay.from_predictions(images[:, None], [0, 0, 0], [1, 0, 1])


@pytest.fixture(scope="module")
def digits(small_mnist):
    X, y, _, _ = small_mnist
    return X[:300], y[:300]


def test_training_curves_of_the_networks_inside_a_model(digits, ax):
    X, y = digits
    pipe = make_pipeline(PixelScaler(), MNISTCNNClassifier(max_epochs=2, random_state=0)).fit(X, y)
    display = TrainingCurvesDisplay.from_estimator(pipe, name="cnn", ax=ax)
    assert [line.get_label() for line in ax.get_lines()] == ["cnn train"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), pipe[-1].history_[:, "train_loss"])
    ensemble = make_cnn_ensemble(n_estimators=2, max_epochs=1, early_stopping=True).fit(X, y)
    curves = TrainingCurvesDisplay.from_estimator(ensemble, metric="valid_acc", ax=Figure().subplots())
    assert list(curves.histories) == ["VotingClassifier #0", "VotingClassifier #1"]
    np.testing.assert_array_equal(
        curves.ax_.get_lines()[1].get_ydata(),
        100 * np.array(ensemble.estimators_[1].history_[:, "valid_acc"]),
    )
    assert display.ax_.get_title() == "Training loss"


def test_training_curves_refuse_a_model_without_networks_and_an_unknown_metric(digits):
    X, y = digits
    with pytest.raises(ValueError, match="^prior holds no fitted skorch network"):
        TrainingCurvesDisplay.from_estimator(DummyClassifier().fit(X, y), name="prior")
    epochs = pd.DataFrame({"train_loss": [1.0], "valid_loss": [np.nan], "valid_acc": [np.nan]})
    with pytest.raises(ValueError, match="metric must be 'loss' or 'valid_acc'; got 'accuracy'."):
        TrainingCurvesDisplay({"m": epochs}).plot(metric="accuracy")


def test_accuracy_against_fit_time_labels_every_model(ax):
    table = pd.DataFrame(
        {
            "accuracy": [0.9, 0.99],
            "ci_low": [0.88, 0.985],
            "ci_high": [0.92, 0.995],
            "fit_time": [1.0, 60.0],
            "train_size": [1000, 60000],
        },
        index=["fast", "slow"],
    )
    display = AccuracyTimeDisplay.from_comparison(SimpleNamespace(table=table, confidence=0.95), ax=ax)
    assert [t.get_text() for t in ax.texts] == ["fast (n=1,000)", "slow (n=60,000)"]
    # The slowest model's label, at the right edge, is written leftwards to stay inside the frame.
    assert [t.get_horizontalalignment() for t in ax.texts] == ["left", "right"]
    assert ax.get_xscale() == "log" and display.ax_.get_title().startswith("Test accuracy (95% interval)")
