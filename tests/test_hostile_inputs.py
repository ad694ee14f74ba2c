"""Hostile inputs: one test per row of docs/hostile_inputs.md.

Every bad input must be refused with a ValueError or TypeError whose message
says what was wrong; the few unusual inputs that the package's policy accepts
(pixels outside 0-255, one sample at predict, a column-vector y) must work.
The cases about files are covered where the files are read: see the table.
"""

import io
import math
import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import DataConversionWarning, NotFittedError

from sk_mnist import MNISTCNNClassifier
from sk_mnist._training import INFERENCE_BATCH_SIZE
from sk_mnist.datasets import read_idx
from sk_mnist.preprocessing import Deskewer, GlobalStandardizer, PixelScaler

TINY = {"max_epochs": 1, "early_stopping": False, "random_state": 0}
N, SIDE = 20, 8  # 20 images of 8x8: fits take a fraction of a second


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (N, SIDE * SIDE)).astype(np.uint8), np.arange(N) % 2


@pytest.fixture(scope="module")
def fitted(data):
    return MNISTCNNClassifier(**TINY).fit(*data)


def with_nan(X):
    X = X.astype(np.float64)
    X[3, 5] = np.nan
    return X


def with_value(value):
    def make(X):
        X = X.astype(np.float64)
        X[1, 2] = value
        return X

    return make


def with_object(X):
    X = X.astype(object)
    X[0, 0] = {"pixel": 1}
    return X


# (id, make X from valid X, exception, message) -- the same rows at fit and at predict.
BAD_X = [
    ("nan", with_nan, ValueError, "Input X contains NaN"),
    ("+inf", with_value(np.inf), ValueError, "Input X contains infinity or a value too large"),
    ("-inf", with_value(-np.inf), ValueError, "Input X contains infinity or a value too large"),
    ("beyond-float32", with_value(1e39), ValueError, r"too large for dtype\('float32'\): 1e\+39"),
    ("empty", lambda X: X[:0], ValueError, r"Found array with 0 sample\(s\) \(shape=\(0, 64\)\)"),
    ("no-features", lambda X: X[:, :0], ValueError, r"Found array with 0 feature\(s\)"),
    (
        "strings",
        lambda X: X.astype(str).astype(object) + "px",
        ValueError,
        "could not convert string to float",
    ),
    ("objects", with_object, TypeError, "argument must be a string or a real number, not 'dict'"),
    ("complex", lambda X: X + 1j, ValueError, "Complex data not supported"),
    ("sparse", sp.csr_matrix, TypeError, "Sparse data was passed for X, but dense data is required"),
    ("1-d", lambda X: X[0], ValueError, "Expected 2D array, got 1D array instead"),
    ("5-d", lambda X: X.reshape(len(X), 1, 1, SIDE, SIDE), ValueError, "got a 5-D array of shape"),
]


@pytest.mark.parametrize("make, error, message", [row[1:] for row in BAD_X], ids=[row[0] for row in BAD_X])
def test_bad_X_at_fit(make, error, message, data):
    X, y = data
    X = make(X)
    y = y[: X.shape[0]] if X.ndim > 1 else y
    with pytest.raises(error, match=message):
        MNISTCNNClassifier(**TINY).fit(X, y)


@pytest.mark.parametrize("make, error, message", [row[1:] for row in BAD_X], ids=[row[0] for row in BAD_X])
def test_bad_X_at_predict(make, error, message, data, fitted):
    X, _ = data
    with pytest.raises(error, match=message):
        fitted.predict(make(X))


@pytest.mark.parametrize(
    "make_y, message",
    [
        (lambda y: np.zeros_like(y), r"needs samples of at least 2 classes in y; got 1 class"),
        (lambda y: y[:-1], r"inconsistent numbers of samples: \[20, 19\]"),
        (lambda y: y + 0.5, "Unknown label type: continuous"),
        (lambda y: np.c_[y, y], r"y should be a 1d array, got an array of shape \(20, 2\) instead"),
        (lambda y: np.where(y == 0, np.nan, y), "Input y contains NaN"),
        (lambda y: None, "requires y to be passed, but the target y is None"),
    ],
    ids=["one-class", "length-mismatch", "continuous", "2-d", "nan", "none"],
)
def test_bad_y_at_fit(make_y, message, data):
    X, y = data
    with pytest.raises(ValueError, match=message):
        MNISTCNNClassifier(**TINY).fit(X, make_y(y))


def test_one_sample_at_fit(data):
    X, y = data
    with pytest.raises(ValueError, match="needs samples of at least 2 classes in y; got 1 class"):
        MNISTCNNClassifier(**TINY).fit(X[:1], y[:1])


def test_one_sample_at_predict_is_fine(data, fitted):
    X, _ = data
    assert fitted.predict_proba(X[:1]).shape == (1, 2)
    np.testing.assert_array_equal(fitted.predict(X[:1]), fitted.predict(X)[:1])


def test_column_vector_y_warns_and_trains_as_1d(data, fitted):
    # scikit-learn's convention: a column vector is accepted with a warning.
    X, y = data
    with pytest.warns(
        DataConversionWarning, match="A column-vector y was passed when a 1d array was expected"
    ):
        clf = MNISTCNNClassifier(**TINY).fit(X, y.reshape(-1, 1))
    np.testing.assert_array_equal(clf.predict_proba(X), fitted.predict_proba(X))


def test_wrong_shapes_at_predict(data, fitted):
    X, _ = data
    with pytest.raises(
        ValueError, match="X has 63 features, but MNISTCNNClassifier is expecting 64 features"
    ):
        fitted.predict(X[:, :63])
    with pytest.raises(
        ValueError, match=r"images of shape \(1, 9, 9\), but .* fitted on images of shape \(1, 8, 8\)"
    ):
        fitted.predict(np.zeros((2, 9, 9)))


def test_other_feature_names_at_predict(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    columns = [f"p{i}" for i in range(X.shape[1])]
    clf = MNISTCNNClassifier(**TINY).fit(pd.DataFrame(X, columns=columns), y)
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        clf.predict(pd.DataFrame(X, columns=columns[::-1]))


def test_predict_before_fit():
    with pytest.raises(NotFittedError, match="This MNISTCNNClassifier instance is not fitted yet"):
        MNISTCNNClassifier().predict(np.zeros((1, 64)))


@pytest.mark.parametrize("scale, shift", [(1000.0, -5000.0), (-1.0, 0.0), (1e-6, 0.0)])
def test_pixels_outside_0_255_are_accepted(scale, shift, data, fitted):
    # The documented policy (user guide): the classifier learns the pixels'
    # scale, so any finite range trains; and an affine rescaling of the pixels
    # trains the same network up to float rounding.
    X, y = data
    X_scaled = X * scale + shift
    clf = MNISTCNNClassifier(**TINY).fit(X_scaled, y)
    assert clf.pixel_mean_ == pytest.approx(X_scaled.mean())
    proba = clf.predict_proba(X_scaled)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    if scale > 0:
        np.testing.assert_allclose(proba, fitted.predict_proba(X), atol=1e-3)
    # Out-of-range pixels at predict are accepted too, with a warning that they
    # are on another scale than fit saw; the output stays a distribution.
    with pytest.warns(UserWarning, match="on another scale"):
        extreme = fitted.predict_proba(X * 1e6 - 1e9)
    assert np.isfinite(extreme).all()


def read_status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def test_huge_batches_are_predicted_in_bounded_memory(data, fitted):
    X, _ = data
    many = np.tile(X, (75, 1))  # 1,500 rows
    batches = []
    hook = fitted.module_.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    try:
        fitted.predict_proba(many[:10])  # warm-up: one-time allocations are not the batch's
        batches.clear()
        try:  # Linux: reset the peak resident set size to now
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            baseline = read_status_kib("VmRSS")
        except OSError:
            baseline = None
        proba = fitted.predict_proba(many)
        peak = read_status_kib("VmHWM") if baseline is not None else None
    finally:
        hook.remove()
    assert proba.shape == (1500, 2)
    # The network sees mini-batches of the inference batch size, never the whole input
    # (the last one padded to that size, so that no row's logits depend on its batch)...
    size = max(fitted.batch_size, INFERENCE_BATCH_SIZE)
    assert batches == [size] * math.ceil(len(many) / size)
    # ...so the peak memory is that of one batch's activations (a few MB),
    # where the whole input at once would take about 175 MB.
    if baseline is not None:
        assert peak - baseline < 48 * 1024


@pytest.mark.parametrize(
    "transformer", [PixelScaler(), GlobalStandardizer(), Deskewer()], ids=lambda t: type(t).__name__
)
@pytest.mark.parametrize(
    "make, error, message",
    [
        (with_nan, ValueError, "Input X contains NaN"),
        (with_value(np.inf), ValueError, "Input X contains infinity"),
        (lambda X: X[:0], ValueError, r"Found array with 0 sample\(s\)"),
        (with_object, TypeError, "argument must be a string or a real number, not 'dict'"),
        (lambda X: X + 1j, ValueError, "Complex data not supported"),
        (sp.csr_matrix, TypeError, "Sparse data was passed for X, but dense data is required"),
        (lambda X: X[0], ValueError, "Expected 2D array, got 1D array instead"),
        (
            lambda X: X.reshape(len(X), SIDE, SIDE),
            ValueError,
            "Found array with dim 3, while dim <= 2 is required",
        ),
    ],
    ids=["nan", "inf", "empty", "objects", "complex", "sparse", "1-d", "3-d"],
)
def test_bad_X_for_transformers(transformer, make, error, message, data):
    X, _ = data
    with pytest.raises(error, match=message):
        transformer.fit(make(X))
    fitted = transformer.fit(X)
    with pytest.raises(error, match=message):
        fitted.transform(make(X))


@pytest.mark.parametrize(
    "transformer", [PixelScaler(), GlobalStandardizer(), Deskewer()], ids=lambda t: type(t).__name__
)
def test_transformers_wrong_n_features(transformer, data):
    X, _ = data
    transformer.fit(X)
    with pytest.raises(
        ValueError, match=f"X has 63 features, but {type(transformer).__name__} is expecting 64"
    ):
        transformer.transform(X[:, :63])


def test_idx_shape_beyond_numpy():
    # Found by benchmarks/fuzz_idx.py: a header of an empty array whose other
    # dimensions overflow numpy's index type.
    data = bytes([0, 0, 0x0B, 4]) + np.array([3331957561, 2652672498, 0, 1], ">u4").tobytes()
    with pytest.raises(
        ValueError, match=r"declares shape \(3331957561, 2652672498, 0, 1\), which numpy cannot"
    ):
        read_idx(io.BytesIO(data))


def test_no_warning_leaks_from_valid_unusual_input(data, fitted):
    # Unusual but valid input (tensors) predicts without warnings; float32
    # extremes are predicted too, with the one warning that they are on
    # another scale than the training pixels.
    X, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict(torch.as_tensor(X))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted.predict(np.full_like(X, 255, dtype=np.float32) * np.float32(1e30))
    assert [str(w.message) for w in caught] == [
        "X's pixels have mean 2.55e+32 and standard deviation 0, but MNISTCNNClassifier was fitted on "
        f"pixels of mean {fitted.pixel_mean_:.3g} and standard deviation {fitted.pixel_std_:.3g}: are they "
        "on another scale (0-1 against 0-255, say)? Scale them as the training pixels were."
    ]


# -- issue 16: labels, strides, devices, layouts and scales ----------------------------------


def test_partial_fit_refuses_labels_of_another_kind(data):
    X, y = data
    clf = MNISTCNNClassifier(**TINY).fit(X, y)
    with pytest.raises(
        ValueError, match=r"y holds string labels, but MNISTCNNClassifier was fitted on number"
    ):
        clf.partial_fit(X, y.astype(str))
    with pytest.raises(ValueError, match="y holds string labels"):
        clf.partial_fit(X, y, classes=["7"])
    assert clf.classes_.tolist() == [0, 1]  # untouched by the refusals
    strings = MNISTCNNClassifier(**TINY).fit(X, np.array(["a", "b"])[y])
    with pytest.raises(
        ValueError, match="y holds number labels, but MNISTCNNClassifier was fitted on string"
    ):
        strings.partial_fit(X, y)
    # Labels of the same kind but another dtype are the same labels.
    clf.partial_fit(X, y.astype(np.int32))
    strings.partial_fit(X, np.array(["a", "b"], dtype=object)[y])
    assert clf.classes_.tolist() == [0, 1] and strings.classes_.tolist() == ["a", "b"]


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_negative_strides_train_as_their_copy(data, method):
    X, y = data
    reversed_rows = getattr(MNISTCNNClassifier(**TINY), method)(X[::-1], y[::-1])
    copied = getattr(MNISTCNNClassifier(**TINY), method)(X[::-1].copy(), y[::-1].copy())
    np.testing.assert_array_equal(reversed_rows.predict_proba(X), copied.predict_proba(X))
    mirrored = X.reshape(-1, SIDE, SIDE)[:, :, ::-1]
    np.testing.assert_array_equal(
        MNISTCNNClassifier(**TINY).fit(mirrored, y).predict_proba(mirrored),
        MNISTCNNClassifier(**TINY).fit(mirrored.copy(), y).predict_proba(mirrored),
    )


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", r"must be 'auto' or a torch device such as 'cpu' or 'cuda:0'; got 'bogus'"),
        (42, r"The 'device' parameter of MNISTCNNClassifier must be"),
        pytest.param(
            "cuda",
            "this machine has no cuda device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present"),
        ),
        pytest.param(
            "cuda:7",
            "this machine has no cuda device",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present"),
        ),
    ],
)
def test_unusable_device_is_refused_before_any_work(data, device, message, monkeypatch):
    X, y = data
    clf = MNISTCNNClassifier(device=device, **TINY)
    # Refused in parameter validation: nothing is built.
    monkeypatch.setattr(MNISTCNNClassifier, "initialize", lambda self: pytest.fail("initialized"))
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)


def test_channels_last_colour_images_warn(data):
    X, y = data
    rgb = np.repeat(X.reshape(N, SIDE, SIDE, 1), 3, axis=3)  # (n, 8, 8, 3): channels last
    with pytest.warns(UserWarning, match=r"channels-last order .* pass X.transpose\(0, 3, 1, 2\)"):
        clf = MNISTCNNClassifier(**TINY).fit(rgb, y)
    assert clf.image_shape_ == (8, 8, 3)  # read as documented, (channels, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert MNISTCNNClassifier(**TINY).fit(rgb.transpose(0, 3, 1, 2), y).image_shape_ == (3, 8, 8)
        MNISTCNNClassifier(**TINY).fit(X.reshape(N, 1, SIDE, SIDE), y)


def test_the_bounds_of_the_training_scale_are_inclusive():
    """A spread of 0.1 to 10 times the training one, a shift of at most 10 training deviations: no warning."""
    pattern = np.array([[0.0, 20.0, 20.0, 0.0], [20.0, 0.0, 0.0, 20.0]])
    clf = MNISTCNNClassifier(**TINY).fit(np.tile(pattern, (10, 1)), np.tile([0, 1], 10))
    assert (clf.pixel_mean_, clf.pixel_std_) == (10.0, 10.0)  # exact: half the pixels 0, half 20

    def warns(low, high):  # a batch of half low, half high pixels
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.predict(np.where(pattern > 0, high, low))
        return [str(w.message).startswith("X's pixels have mean") for w in caught] == [True]

    assert not warns(9.0, 11.0) and warns(9.5, 10.5)  # spread 0.1, then 0.05
    assert not warns(-90.0, 110.0) and warns(-95.0, 115.0)  # spread 10, then 10.5
    assert not warns(100.0, 120.0) and warns(105.0, 125.0)  # shift +10, then +10.5
    assert not warns(-100.0, -80.0) and warns(-105.0, -85.0)  # shift -10, then -10.5


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_the_scale_warning_points_at_the_callers_line(method, data, fitted):
    with pytest.warns(UserWarning, match="on another scale") as record:
        getattr(fitted, method)(data[0] / 255)
    # Under mutation testing (mutmut sets MUTANT_UNDER_TEST) its wrapper frames sit in between.
    if "MUTANT_UNDER_TEST" not in os.environ:
        assert record[0].filename == __file__


def test_pixels_on_another_scale_than_fit_warn(data, fitted):
    X, _ = data
    standardized = (X - X.mean()) / X.std()  # spread exactly 1: still another scale
    for rescaled in (X / 255, X * 255.0, X - 1e4, standardized):
        with pytest.warns(UserWarning, match=r"fitted on pixels of mean .* are they on another scale"):
            fitted.predict(rescaled)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict(X)
        fitted.predict(X[:1])
        fitted.predict(np.zeros_like(X))  # a blank batch has no spread to compare
        fitted.predict(X.astype(np.float64) + 3.0)  # a few grey levels off is the same scale


def test_monitor_refuses_labels_of_another_kind(data, fitted):
    from sk_mnist.monitoring import PerformanceMonitor

    X, y = data
    monitor = PerformanceMonitor(fitted, baseline_accuracy=1.0)
    with pytest.raises(
        ValueError, match="y holds string labels, but the monitored estimator was fitted on number"
    ):
        monitor.observe(X, y.astype(str))
    assert monitor.report()["n_labelled"] == 0 and not monitor.alerts
    monitor.observe(X, y)
    assert monitor.report()["n_labelled"] == N
