"""Transformers that normalize digit images for the CNN and classical models.

All three take rows of pixels ``(n_samples, n_features)`` and return floats:
float32 and float64 input keep their dtype; any other dtype (uint8 pixels)
becomes float32, which holds every 8-bit value exactly at half the memory of
float64.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from ._docs import DocLinkMixin
from ._images import PIXEL_DTYPES, canvas_shape

__all__ = ["Deskewer", "GlobalStandardizer", "PixelScaler"]


class _PixelTransformer(DocLinkMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Validation, dtype policy and tags shared by the pixel transformers."""

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Record the number of features: the transformer learns nothing from the values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Pixel rows.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._validate(X, reset=True)
        return self

    def _validate(self, X, *, reset):
        if not reset:
            check_is_fitted(self)
        X = validate_data(self, X, reset=reset, dtype=PIXEL_DTYPES)
        return X.astype(np.float32) if X.dtype == np.uint8 else X

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # Each transformer also describes itself as a torch module computing the
    # same function of float32 pixel rows, ``_torch_module()``: the ONNX export
    # chains them before the network, and the report counts their weights.
    # torch is imported only there (and in Deskewer.transform), so that the
    # module imports without it.


class PixelScaler(_PixelTransformer):
    """Scale pixel intensities from ``[0, max_value]`` to ``[0, 1]``.

    A fixed scaling, learnt from nothing: ``fit`` only records the number of
    features, so the same pixels always map to the same values.

    Parameters
    ----------
    max_value : float, default=255.0
        The intensity that becomes 1 (255 for 8-bit images).

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    GlobalStandardizer : Standardize with the training set's mean and std.
    sklearn.preprocessing.MinMaxScaler : Per-feature scaling learnt from data.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mnist.preprocessing import PixelScaler
    >>> PixelScaler().fit_transform(np.array([[0, 51, 255]], dtype=np.uint8))
    array([[0. , 0.2, 1. ]], dtype=float32)
    """

    _parameter_constraints: dict = {"max_value": [Interval(Real, 0, None, closed="neither")]}

    def __init__(self, max_value=255.0):
        self.max_value = max_value

    def transform(self, X):
        """Divide the pixels by ``max_value``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Pixel rows.

        Returns
        -------
        X_scaled : ndarray of shape (n_samples, n_features)
            The scaled pixels.
        """
        X = self._validate(X, reset=False)
        return X / X.dtype.type(self.max_value)

    def _torch_module(self):
        from .modules import Standardize

        return Standardize(0.0, self.max_value)


class GlobalStandardizer(_PixelTransformer):
    """Standardize pixels with one mean and one standard deviation for all.

    The MNIST practice (mean 0.1307, std 0.3081 on [0, 1] pixels): unlike
    :class:`~sklearn.preprocessing.StandardScaler`, which standardizes every
    pixel on its own and so blows up the noise of the nearly-always-blank
    border pixels, a single scalar pair keeps the images' relative contrast.

    Attributes
    ----------
    mean_ : float
        Mean of all training pixels.

    scale_ : float
        Standard deviation of all training pixels (1 if they are constant).

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    PixelScaler : A fixed scaling to [0, 1].
    sklearn.preprocessing.StandardScaler : Per-feature standardization.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.preprocessing import GlobalStandardizer
    >>> X, _ = load_mnist(return_X_y=True)
    >>> scaler = GlobalStandardizer().fit(X)
    >>> round(scaler.mean_ / 255, 4), round(scaler.scale_ / 255, 4)
    (0.1307, 0.3081)
    """

    _parameter_constraints: dict = {}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the mean and standard deviation of all pixels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Pixel rows.
        y : None
            Ignored.

        Returns
        -------
        self : GlobalStandardizer
            The fitted transformer.
        """
        mean, std = _pixel_statistics(self._validate(X, reset=True))
        # Constant pixels: standardizing only subtracts the mean.
        self.mean_, self.scale_ = mean, std or 1.0
        return self

    def transform(self, X):
        """Subtract ``mean_`` and divide by ``scale_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Pixel rows.

        Returns
        -------
        X_standardized : ndarray of shape (n_samples, n_features)
            The standardized pixels.
        """
        X = self._validate(X, reset=False)
        kind = X.dtype.type
        return (X - kind(self.mean_)) / kind(self.scale_)

    def inverse_transform(self, X):
        """Map standardized pixels back to the original intensities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Standardized pixels.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The pixels before standardization.
        """
        X = self._validate(X, reset=False)
        kind = X.dtype.type
        return X * kind(self.scale_) + kind(self.mean_)

    def _torch_module(self):
        from .modules import Standardize

        check_is_fitted(self)
        return Standardize(self.mean_, self.scale_)


class Deskewer(_PixelTransformer):
    """Straighten slanted digits by the second moments of their ink.

    Each image is sheared horizontally so that its principal axis becomes
    vertical, and shifted so that its centre of mass sits at the image
    centre (bilinear interpolation). The preprocessing with which LeCun et al.
    (1998) cut the error of a linear classifier on MNIST from 12.0% to 8.4%.

    Rows are images by the package's rule: a square number of features is a
    square image (784: 28x28); other rows are deskewed on the smallest square
    canvas that holds them. Ink is measured above each image's darkest pixel,
    so any background level works.

    Parameters
    ----------
    chunk_size : int, default=4096
        Images processed at once; bounds the temporary memory.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    See Also
    --------
    PixelScaler : Scale the deskewed pixels to [0, 1].

    References
    ----------
    Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning
    applied to document recognition", Proc. IEEE 86(11), 1998.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_mnist.preprocessing import Deskewer
    >>> slanted = np.zeros((5, 5))
    >>> slanted[[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]] = 1.0  # a stroke at 45 degrees
    >>> straight = Deskewer().fit_transform(slanted.reshape(1, -1)).reshape(5, 5)
    >>> straight.round(2)[:, 2]  # the stroke now runs down the middle column
    array([1., 1., 1., 1., 1.])
    """

    _parameter_constraints: dict = {"chunk_size": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, chunk_size=4096):
        self.chunk_size = chunk_size

    def transform(self, X):
        """Deskew every image.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Pixel rows.

        Returns
        -------
        X_deskewed : ndarray of shape (n_samples, n_features)
            The deskewed pixels, in the input's float dtype.
        """
        import torch

        X = self._validate(X, reset=False)
        # The exported graph's own module, in float64: one algorithm for both.
        deskew = self._torch_module().double()
        out = np.empty_like(X)
        with torch.no_grad():
            for start in range(0, len(X), self.chunk_size):
                rows = slice(start, start + self.chunk_size)
                out[rows] = deskew(torch.from_numpy(X[rows].astype(np.float64))).numpy()
        return out

    def _torch_module(self):
        from .modules import Deskew

        check_is_fitted(self)
        _, height, width = canvas_shape(self.n_features_in_)
        return Deskew(height, width, self.n_features_in_)


def _pixel_statistics(X, chunk_size=1024):
    """Mean and standard deviation of all the pixels of ``X`` together, in float64.

    Rows are read ``chunk_size`` at a time, so that no float64 (or, for uint8
    pixels, integer) copy of the whole of ``X`` is made: for MNIST that copy
    would take 376 MB. uint8 pixels are counted into a histogram of their 256
    values, from which both moments are exact.
    """
    chunks = [X[start : start + chunk_size] for start in range(0, len(X), chunk_size)]
    if X.dtype == np.uint8:
        counts = sum(np.bincount(chunk.ravel(), minlength=256) for chunk in chunks)
        values = np.arange(256, dtype=np.float64)
        mean = counts @ values / X.size
        return float(mean), float(np.sqrt(counts @ np.square(values - mean) / X.size))
    mean = X.mean(dtype=np.float64)
    squares = sum(np.square(chunk.astype(np.float64) - mean).sum() for chunk in chunks)
    return float(mean), float(np.sqrt(squares / X.size))
