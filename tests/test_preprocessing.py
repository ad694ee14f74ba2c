"""The pixel transformers' arithmetic, against the formulas their docstrings give."""

import numpy as np
import pytest

from sk_mnist.preprocessing import GlobalStandardizer, PixelScaler


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
