"""The pixel transformers' arithmetic, against the formulas their docstrings give."""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sk_mnist.modules import Deskew
from sk_mnist.preprocessing import (
    Deskewer,
    GlobalStandardizer,
    PixelScaler,
    _pixel_statistics,
)


def _deskew(images):
    """Deskew a stack of float64 images with the module Deskewer runs."""
    n, height, width = images.shape
    with torch.no_grad():
        out = Deskew(height, width, height * width).double()(torch.from_numpy(images.reshape(n, -1)))
    return out.numpy().reshape(images.shape)


@pytest.mark.parametrize("max_value", [16.0, 4095])  # 8x8 digits (0-16), 12-bit pictures
def test_pixel_scaler_divides_by_max_value(max_value, rng):
    X = rng.integers(0, int(max_value) + 1, size=(20, 64)).astype(np.float64)
    X[0, :3] = [0, max_value / 2, max_value]
    scaled = PixelScaler(max_value=max_value).fit(X).transform(X)
    assert scaled.dtype == np.float64
    np.testing.assert_allclose(scaled, X / max_value, rtol=1e-15)
    np.testing.assert_array_equal(scaled[0, :3], [0.0, 0.5, 1.0])  # [0, max_value] to [0, 1]


def test_global_standardizer_uses_one_mean_and_std(rng):
    X = rng.normal(loc=40.0, scale=7.0, size=(30, 16))
    scaler = GlobalStandardizer().fit(X)
    mean = X.sum() / X.size
    std = np.sqrt(((X - mean) ** 2).sum() / X.size)  # of all pixels together, ddof 0
    assert scaler.mean_ == pytest.approx(mean, rel=1e-12)
    assert scaler.scale_ == pytest.approx(std, rel=1e-12)
    np.testing.assert_allclose(scaler.transform(X), (X - mean) / std, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 7, 2500])  # within one chunk of 1024 rows, and across three
def test_pixel_statistics_of_all_pixels_together(dtype, rows, rng):
    X = rng.integers(0, 256, (rows, 5)).astype(dtype)
    mean, std = _pixel_statistics(X[::-1])  # a view with negative strides, too
    reference = X.astype(np.float64)
    assert mean == pytest.approx(reference.mean(), rel=1e-13, abs=0)
    assert std == pytest.approx(reference.std(), rel=1e-12, abs=0)
    assert (mean, std) == pytest.approx(_pixel_statistics(X, chunk_size=2), rel=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_global_standardizer_inverse_transform(dtype, rng):
    X = rng.normal(loc=40.0, scale=7.0, size=(30, 16)).astype(dtype)
    scaler = GlobalStandardizer().fit(X)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    # It undoes transform...
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(X)), X, rtol=tol)
    # ...by the documented formula, on any standardized values.
    Z = rng.normal(size=(5, 16)).astype(dtype)
    restored = scaler.inverse_transform(Z)
    assert restored.dtype == dtype
    np.testing.assert_allclose(restored, Z * scaler.scale_ + scaler.mean_, rtol=tol)
    # Standardized zeros are the mean, ones the mean plus one standard deviation.
    mean, std = X.mean(dtype=np.float64), X.std(dtype=np.float64)
    ends = scaler.inverse_transform(np.tile(np.array([[0.0], [1.0]], dtype=dtype), (1, 16)))
    np.testing.assert_allclose(ends[:, 0], [mean, mean + std], rtol=tol)


# --------------------------------------------------------------------------
# Independent references for the deskewing contract
# --------------------------------------------------------------------------


def _reference_deskew(image):
    """Deskew one 2-D image as the Deskewer docstring describes, with scipy.

    Ink is the image above its darkest pixel; its centre of mass and the skew
    cov(row, col) / var(row) come from the ink's moments; output pixel (r, c)
    reads the ink, bilinearly and as zero outside the image, at row
    r - centre_row + row_mass and column skew * (r - centre_row) + c - centre_col + col_mass,
    and the background level is added back. Blank images are left as they are.
    """
    image = np.asarray(image, dtype=np.float64)
    height, width = image.shape
    background = image.min()
    ink = image - background
    total = ink.sum()
    if total == 0:
        return image.copy()
    r, c = np.mgrid[:height, :width].astype(np.float64)
    row_mass = (ink * r).sum() / total
    col_mass = (ink * c).sum() / total
    row_var = (ink * (r - row_mass) ** 2).sum() / total
    cov = (ink * (r - row_mass) * (c - col_mass)).sum() / total
    skew = cov / row_var if row_var > 0 else 0.0
    centre_row, centre_col = (height - 1) / 2, (width - 1) / 2
    matrix = np.array([[1.0, 0.0], [skew, 1.0]])
    offset = np.array([row_mass - centre_row, col_mass - centre_col - skew * centre_row])
    sheared = ndimage.affine_transform(
        ink, matrix, offset=offset, order=1, mode="grid-constant", cval=0.0, prefilter=False
    )
    return sheared + background


def _reference_transform(X):
    """Deskewer.transform by the package's image rule: pad rows to a square canvas."""
    X = np.asarray(X, dtype=np.float64)
    side = math.isqrt(X.shape[1])
    side += side * side < X.shape[1]
    canvas = np.zeros((len(X), side * side))
    canvas[:, : X.shape[1]] = X
    out = [_reference_deskew(row.reshape(side, side)).ravel()[: X.shape[1]] for row in canvas]
    return np.array(out).reshape(X.shape)


def _slanted_strokes(rng, n, height, width):
    """Images of slanted line segments of random slope, position and thickness on noise."""
    images = np.zeros((n, height, width))
    r, c = np.mgrid[:height, :width]
    for image in images:
        slope = rng.uniform(-0.8, 0.8)
        col0 = rng.uniform(width * 0.3, width * 0.7)
        top, bottom = sorted(rng.integers(0, height, size=2))
        near = np.abs(c - (col0 + slope * (r - height / 2))) < rng.uniform(0.6, 2.0)
        image[near & (r >= top) & (r <= bottom + 1)] = rng.uniform(50, 255)
        image += rng.uniform(0, 20, size=image.shape) * (rng.random(image.shape) < 0.2)
    return images


def test_reference_deskew_straightens_the_docstring_example():
    # The reference itself reproduces the documented example: a 45-degree
    # stroke becomes the middle column.
    slanted = np.eye(5)
    np.testing.assert_allclose(_reference_deskew(slanted)[:, 2], np.ones(5), atol=1e-12)


@pytest.mark.parametrize("shape", [(28, 28), (9, 13), (12, 7)])
def test_deskew_helper_matches_reference(shape, rng):
    images = _slanted_strokes(rng, 6, *shape)
    images[1] += 30.0  # a background level
    images[2] = 0.0  # blank
    images[3] = 42.5  # constant: no ink
    images[4] = 0.0
    images[4, shape[0] // 2, :] = 9.0  # a horizontal bar: no row variance, no skew
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # blank images divide nothing by zero
        out = _deskew(images.copy())
    assert out.shape == images.shape
    assert out.dtype == np.float64
    expected = np.array([_reference_deskew(image) for image in images])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(out[2], 0.0)
    np.testing.assert_array_equal(out[3], 42.5)


def test_deskew_helper_single_pixel_and_column():
    # A single pixel of ink moves to the image centre (bilinearly shared
    # between the four centre pixels of an even-sided image).
    image = np.zeros((1, 6, 6))
    image[0, 1, 4] = 8.0
    out = _deskew(image)
    assert out.sum() == pytest.approx(8.0)
    np.testing.assert_allclose(out[0, 2:4, 2:4], 2.0)
    # ...and lands on the centre pixel of an odd-sided one.
    image = np.zeros((1, 5, 5))
    image[0, 0, 4] = 3.0
    expected = np.zeros((5, 5))
    expected[2, 2] = 3.0
    np.testing.assert_allclose(_deskew(image)[0], expected, atol=1e-12)
    # A vertical stroke off centre is only shifted to the centre column.
    image = np.zeros((1, 7, 7))
    image[0, 1:6, 5] = 1.0
    expected = np.zeros((7, 7))
    expected[1:6, 3] = 1.0
    np.testing.assert_allclose(_deskew(image)[0], expected, atol=1e-12)


@pytest.mark.parametrize("n_features", [784, 64, 20])  # 28x28, 8x8, and 20 on a 5x5 canvas
def test_deskewer_matches_reference(n_features, rng):
    side = math.isqrt(n_features)
    images = _slanted_strokes(rng, 5, side, side).reshape(5, -1)
    if n_features != side * side:
        images = _slanted_strokes(rng, 5, 5, 5).reshape(5, -1)[:, :n_features]
    X = images.copy()
    out = Deskewer().fit(X).transform(X)
    np.testing.assert_array_equal(X, images)  # the input is left alone
    assert out.shape == X.shape
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, _reference_transform(X), rtol=1e-10, atol=1e-10)


def test_deskewer_docstring_example():
    slanted = np.zeros((5, 5))
    slanted[[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]] = 1.0
    straight = Deskewer().fit_transform(slanted.reshape(1, -1)).reshape(5, 5)
    expected = np.zeros((5, 5))
    expected[:, 2] = 1.0
    np.testing.assert_allclose(straight, expected, atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 100])
def test_deskewer_independent_of_chunk_size(chunk_size, rng):
    X = _slanted_strokes(rng, 7, 8, 8).reshape(7, -1)
    X[3] = 0.0
    X[4] = 11.0
    expected = _reference_transform(X)
    out = Deskewer(chunk_size=chunk_size).fit(X).transform(X)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    # One image alone gives what it gives among others.
    np.testing.assert_allclose(Deskewer(chunk_size=chunk_size).fit(X).transform(X[5:6]), expected[5:6])


def test_deskewer_leaves_blank_and_constant_images(rng):
    X = np.zeros((3, 49))
    X[1] = 17.0
    X[2] = 255.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(Deskewer().fit_transform(X), X)


def test_deskewer_any_background_level(rng):
    # Ink is measured above each image's darkest pixel: raising the background
    # raises the output by the same amount and deskews the same.
    X = _slanted_strokes(rng, 4, 10, 10).reshape(4, -1)
    deskewer = Deskewer().fit(X)
    np.testing.assert_allclose(deskewer.transform(X + 100.0), deskewer.transform(X) + 100.0, atol=1e-9)


@pytest.mark.parametrize(
    "dtype, out_dtype",
    [
        (np.float64, np.float64),
        (np.float32, np.float32),
        (np.uint8, np.float32),
        (np.int64, np.float32),
        (np.int16, np.float32),
        (np.float16, np.float32),
    ],
)
@pytest.mark.parametrize("transformer", [PixelScaler, GlobalStandardizer, Deskewer])
def test_transformers_dtype_policy(transformer, dtype, out_dtype, rng):
    # float32 and float64 keep their dtype, anything else becomes float32.
    images = _slanted_strokes(rng, 4, 6, 6).reshape(4, -1).round()
    X = images.astype(dtype)
    fitted = transformer().fit(X)
    out = fitted.transform(X)
    assert out.dtype == out_dtype
    # The values are those of the float64 computation, to the output's precision.
    expected = transformer().fit(images).transform(images)
    tol = 1e-12 if out_dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)
    if transformer is GlobalStandardizer:
        assert fitted.inverse_transform(out).dtype == out_dtype


def test_pixel_scaler_uint8_to_float32_exactly():
    X = np.arange(256, dtype=np.uint8).reshape(4, 64)
    out = PixelScaler().fit(X).transform(X)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(256, dtype=np.float32).reshape(4, 64) / np.float32(255))
    np.testing.assert_array_equal(out[[0, -1], [0, -1]], [0.0, 1.0])
    # The docstring example.
    np.testing.assert_array_equal(
        PixelScaler().fit_transform(np.array([[0, 51, 255]], dtype=np.uint8)),
        np.array([[0.0, 0.2, 1.0]], dtype=np.float32),
    )


def test_default_parameters():
    assert PixelScaler().get_params() == {"max_value": 255.0}
    assert GlobalStandardizer().get_params() == {}
    assert Deskewer().get_params() == {"chunk_size": 4096}
    assert PixelScaler(max_value=16).get_params() == {"max_value": 16}
    assert Deskewer(chunk_size=3).get_params() == {"chunk_size": 3}


@pytest.mark.parametrize("transformer", [PixelScaler, GlobalStandardizer, Deskewer])
def test_preserves_dtype_tag(transformer):
    assert transformer().__sklearn_tags__().transformer_tags.preserves_dtype == ["float64", "float32"]


_MAX_VALUE_RANGE = r"must be a float in the range \(0\.0, inf\)\."
_CHUNK_SIZE_RANGE = r"must be an int in the range \[1, inf\)\."


@pytest.mark.parametrize(
    "estimator, message",
    [
        (
            PixelScaler(max_value=0),
            rf"^The 'max_value' parameter of PixelScaler {_MAX_VALUE_RANGE} Got 0 instead\.$",
        ),
        (
            PixelScaler(max_value=-1.5),
            rf"^The 'max_value' parameter of PixelScaler {_MAX_VALUE_RANGE} Got -1\.5 instead\.$",
        ),
        (
            PixelScaler(max_value="255"),
            rf"^The 'max_value' parameter of PixelScaler {_MAX_VALUE_RANGE} Got '255' instead\.$",
        ),
        (
            Deskewer(chunk_size=0),
            rf"^The 'chunk_size' parameter of Deskewer {_CHUNK_SIZE_RANGE} Got 0 instead\.$",
        ),
        (
            Deskewer(chunk_size=2.0),
            rf"^The 'chunk_size' parameter of Deskewer {_CHUNK_SIZE_RANGE} Got 2\.0 instead\.$",
        ),
    ],
)
def test_bad_parameters(estimator, message):
    X = np.ones((2, 4))
    with pytest.raises(InvalidParameterError, match=message):
        estimator.fit(X)
    with pytest.raises(InvalidParameterError, match=message):
        estimator.fit_transform(X)


def test_smallest_valid_parameters(rng):
    X = rng.uniform(0, 1, size=(3, 9))
    np.testing.assert_allclose(PixelScaler(max_value=1e-3).fit_transform(X), X / 1e-3)
    np.testing.assert_allclose(Deskewer(chunk_size=1).fit_transform(X), _reference_transform(X), atol=1e-10)


@pytest.mark.parametrize("transformer", [PixelScaler(), GlobalStandardizer(), Deskewer()])
def test_transform_before_fit(transformer):
    with pytest.raises(NotFittedError, match=f"^This {type(transformer).__name__} instance is not fitted"):
        transformer.transform(np.ones((2, 4)))
    if isinstance(transformer, GlobalStandardizer):
        with pytest.raises(NotFittedError, match="^This GlobalStandardizer instance is not fitted"):
            transformer.inverse_transform(np.ones((2, 4)))


@pytest.mark.parametrize("transformer", [PixelScaler(), GlobalStandardizer(), Deskewer()])
def test_fit_attributes_and_feature_names(transformer, rng):
    pd = pytest.importorskip("pandas")
    X = rng.uniform(0, 255, size=(5, 9))
    fitted = transformer.fit(X)
    assert fitted is transformer
    assert fitted.n_features_in_ == 9
    assert not hasattr(fitted, "feature_names_in_")
    np.testing.assert_array_equal(fitted.get_feature_names_out(), [f"x{i}" for i in range(9)])

    columns = [f"pixel{i}" for i in range(9)]
    frame = pd.DataFrame(X, columns=columns, index=range(10, 15))
    fitted = clone(transformer).fit(frame)
    assert fitted.n_features_in_ == 9
    np.testing.assert_array_equal(fitted.feature_names_in_, columns)
    np.testing.assert_array_equal(fitted.get_feature_names_out(), columns)
    np.testing.assert_allclose(fitted.transform(frame), clone(transformer).fit(X).transform(X))
    # Other names at transform time are refused.
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        fitted.transform(frame.rename(columns={"pixel0": "other"}))

    out = clone(transformer).set_output(transform="pandas").fit(frame).transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == columns
    assert list(out.index) == list(range(10, 15))
    np.testing.assert_allclose(out.to_numpy(), clone(transformer).fit(X).transform(X))


@pytest.mark.parametrize("transformer", [PixelScaler(), GlobalStandardizer(), Deskewer()])
def test_refit_resets_n_features(transformer, rng):
    transformer.fit(rng.uniform(size=(3, 16)))
    transformer.fit(rng.uniform(size=(3, 9)))
    assert transformer.n_features_in_ == 9
    with pytest.raises(ValueError, match=r"^X has 16 features, but .* is expecting 9 features as input\.$"):
        transformer.transform(rng.uniform(size=(3, 16)))


def test_global_standardizer_inverse_checks_n_features(rng):
    scaler = GlobalStandardizer().fit(rng.normal(size=(4, 16)))
    with pytest.raises(
        ValueError, match=r"^X has 15 features, but GlobalStandardizer is expecting 16 features as input\.$"
    ):
        scaler.inverse_transform(rng.normal(size=(4, 15)))
    assert scaler.n_features_in_ == 16


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_global_standardizer_statistics_in_float64(dtype, rng):
    # mean_ and scale_ are the float64 mean and (ddof 0) std of all pixels,
    # also for uint8 and float32 pixels.
    X = rng.integers(0, 256, size=(200, 49)).astype(dtype)
    X[X < 120] = 0  # mostly blank, like digits
    scaler = GlobalStandardizer().fit(X)
    X64 = X.astype(np.float64)
    assert isinstance(scaler.mean_, float)
    assert isinstance(scaler.scale_, float)
    assert scaler.mean_ == pytest.approx(X64.sum() / X64.size, rel=1e-13)
    assert scaler.scale_ == pytest.approx(np.sqrt(((X64 - X64.mean()) ** 2).mean()), rel=1e-13)


def test_global_standardizer_constant_pixels():
    X = np.full((4, 9), 7.0)
    scaler = GlobalStandardizer().fit(X)
    assert scaler.mean_ == 7.0
    assert scaler.scale_ == 1.0
    np.testing.assert_array_equal(scaler.transform(X + 2.0), np.full((4, 9), 2.0))
    np.testing.assert_array_equal(scaler.inverse_transform(np.full((1, 9), 3.0)), np.full((1, 9), 10.0))


@pytest.mark.parametrize(
    "n_images, chunk_size, batches", [(7, 3, [3, 3, 1]), (6, 2, [2, 2, 2]), (4, 10, [4])]
)
def test_deskewer_processes_each_image_once_in_chunks(n_images, chunk_size, batches, rng, monkeypatch):
    # chunk_size bounds the images deskewed at once: every image goes through
    # the deskewing exactly once, in consecutive chunks of chunk_size.
    seen = []
    forward = Deskew.forward

    def recording_forward(module, rows):
        seen.append(rows.numpy().copy())
        return forward(module, rows)

    monkeypatch.setattr(Deskew, "forward", recording_forward)
    X = _slanted_strokes(rng, n_images, 6, 6).reshape(n_images, -1)
    out = Deskewer(chunk_size=chunk_size).fit(X).transform(X)
    assert [len(rows) for rows in seen] == batches
    np.testing.assert_array_equal(np.concatenate(seen), X)
    np.testing.assert_allclose(out, _reference_transform(X), atol=1e-10)


@pytest.mark.parametrize("factor", [1e-4, 0.5, 3.0])
def test_deskew_is_homogeneous_in_intensity(factor, rng):
    # Only the ink's distribution matters: faint images (whose ink sums to
    # less than one) are deskewed and centred exactly as bright ones.
    images = _slanted_strokes(rng, 4, 8, 8)
    images[0] = 0.0
    images[0, 1, 6] = 1.0
    out = _deskew(images * factor)
    np.testing.assert_allclose(out, _deskew(images) * factor, rtol=1e-10, atol=1e-12 * factor)
    np.testing.assert_allclose(out, np.array([_reference_deskew(i) for i in images * factor]), atol=1e-12)


def test_deskew_without_row_spread_is_only_shifted(rng):
    # Ink all on one row has no row variance, so no skew: the image is only
    # moved so that its centre of mass sits at the centre, here half a row
    # between two rows of an even-height image.
    images = _slanted_strokes(rng, 8, 6, 6)  # images with skew around them
    for k in (1, 4, 6):
        images[k] = 0.0
        images[k, k % 6, 1:5] = [1.0, 2.0, 3.0, 4.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning (division by zero, uninitialized memory)
        out = _deskew(images)
    np.testing.assert_allclose(out, np.array([_reference_deskew(i) for i in images]), atol=1e-10)
    for k in (1, 4, 6):
        bar = np.zeros(6)
        shift = 2.5 - (1 * 1 + 2 * 2 + 3 * 3 + 4 * 4) / 10  # column centre minus the bar's centre of mass
        bar_cols = np.arange(1, 5) + shift
        for col, value in zip(bar_cols, [1.0, 2.0, 3.0, 4.0], strict=True):
            left = math.floor(col)
            bar[left] += value * (1 - (col - left))
            if left + 1 < 6:
                bar[left + 1] += value * (col - left)
        expected = np.zeros((6, 6))
        expected[2] = expected[3] = bar / 2
        np.testing.assert_allclose(out[k], expected, atol=1e-12)


@pytest.mark.parametrize("n_features", [784, 64, 20])
@pytest.mark.parametrize(
    "transformer",
    [PixelScaler(max_value=16.0), GlobalStandardizer(), Deskewer()],
    ids=lambda t: type(t).__name__,
)
def test_the_torch_twin_computes_the_transform(transformer, n_features, rng):
    """What the ONNX export chains before the network: the same function, in float32 torch."""
    torch = pytest.importorskip("torch")
    X = rng.integers(0, 17, (40, n_features)).astype(np.float32)
    X[:, : n_features // 4] = 0  # an uneven background, for the deskewing
    fitted = clone(transformer).fit(X)
    with torch.no_grad():
        twin = fitted._torch_module()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(twin, fitted.transform(X), rtol=0, atol=1e-4)


@pytest.mark.parametrize("transformer", [GlobalStandardizer(), Deskewer()])
def test_the_torch_twin_needs_the_fitted_state(transformer):
    with pytest.raises(NotFittedError):
        transformer._torch_module()
