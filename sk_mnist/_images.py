"""How inputs of any accepted form become rows of pixels with an image shape.

One rule, shared by the classifier and the image transformers:

* ``(n, H, W)`` arrays are single-channel images and ``(n, C, H, W)`` arrays
  images with C channels; both are flattened to rows of pixels.
* ``(n, k)`` rows are images of side ``sqrt(k)`` when ``k`` is a square number
  (784 features: 28x28 MNIST; 64 features: 8x8 ``load_digits``); otherwise
  they are laid out row-major on the smallest square canvas that holds them,
  the remaining canvas pixels being zero.
"""

import math
import warnings

import numpy as np
from sklearn.utils.validation import check_array, validate_data

# The dtypes kept as they are; anything else numeric becomes float32, which
# holds every 8-bit pixel value exactly.
PIXEL_DTYPES = (np.float32, np.float64, np.uint8)


# Channel counts of pictures (gray, RGB, RGBA): a last axis of this size on a
# 4-D array whose second axis is not one looks like channels-last pictures.
_CHANNEL_COUNTS = (1, 3, 4)


def canvas_shape(n_features):
    """Return ``(1, side, side)``, the single-channel image ``n_features`` fill.

    Examples
    --------
    >>> canvas_shape(784), canvas_shape(64), canvas_shape(5)
    ((1, 28, 28), (1, 8, 8), (1, 3, 3))
    """
    side = math.isqrt(n_features)
    if side * side < n_features:
        side += 1
    return (1, side, side)


def _nd_images(X):
    """Flatten ``(n, H, W)`` or ``(n, C, H, W)`` input; leave other input alone.

    Returns the (possibly flattened) input and the image shape it had, or None
    for input that is not an image array.
    """
    if isinstance(X, (list, tuple)):
        n_dims = np.ndim(X)
    else:  # arrays and tensors; other inputs are left to validate_data
        n_dims = getattr(X, "ndim", 2)
    if n_dims <= 2:
        return X, None
    if n_dims > 4:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features), 3-D (n_samples, height, width) "
            f"or 4-D (n_samples, channels, height, width); got a {n_dims}-D array of "
            f"shape {np.shape(X)}."
        )
    X = check_array(X, allow_nd=True, dtype=PIXEL_DTYPES, input_name="X")
    shape = X.shape[1:] if X.ndim == 4 else (1, *X.shape[1:])
    if X.ndim == 4 and X.shape[3] in _CHANNEL_COUNTS and X.shape[1] not in _CHANNEL_COUNTS:
        warnings.warn(
            f"X has shape {X.shape}, read as (n_samples, channels, height, width): {X.shape[1]} "
            f"channels of {X.shape[2]}x{X.shape[3]} pixels. If it holds {X.shape[3]}-channel images "
            "in channels-last order (n_samples, height, width, channels), pass "
            "X.transpose(0, 3, 1, 2) instead.",
            UserWarning,
            stacklevel=4,
        )
    return X.reshape(len(X), -1), tuple(int(d) for d in shape)


def _check_float32_range(X):
    """Refuse float64 values that would overflow when rounded to float32.

    The networks compute in float32; scikit-learn's finiteness check passes
    float64 values such as 1e39, which would silently become infinite there
    and make every prediction NaN.
    """
    if X.dtype != np.float64 or not X.size:
        return
    limit = float(np.finfo(np.float32).max)
    largest = max(float(X.max()), -float(X.min()))
    if largest > limit:
        raise ValueError(
            f"Input X contains a value too large for dtype('float32'): {largest:.3g}. "
            f"The network computes in float32, whose values lie within +-{limit:.3g}."
        )


def validate_images(estimator, X, y="no_validation", *, reset, **check_params):
    """Validate ``X`` (and ``y``) and return pixel rows plus their image shape.

    At ``reset`` the estimator's ``n_features_in_`` (and ``feature_names_in_``)
    are set and the returned shape is the one to remember; afterwards ``X``
    must have the fitted number of pixels, and image arrays the fitted shape.

    Parameters
    ----------
    estimator : estimator instance
        The estimator whose fitted input description is set or checked.
    X : array-like, DataFrame or (n, H, W) / (n, C, H, W) array
        The input.
    y : array-like or "no_validation", default="no_validation"
        The target, validated with ``X`` when given.
    reset : bool
        Whether this is a fit (True) or a later call (False).
    **check_params : dict
        Passed on to :func:`sklearn.utils.validation.validate_data`.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype uint8, float32 or float64
    y : ndarray, only when ``y`` was given
    image_shape : tuple of int
        ``(channels, height, width)`` of the images ``X`` holds.
    """
    X, nd_shape = _nd_images(X)
    fitted_shape = None if reset else getattr(estimator, "image_shape_", None)
    if nd_shape is not None and fitted_shape is not None and nd_shape != fitted_shape:
        raise ValueError(
            f"X holds images of shape {nd_shape}, but {type(estimator).__name__} was "
            f"fitted on images of shape {fitted_shape}."
        )
    out = validate_data(estimator, X, y, reset=reset, dtype=PIXEL_DTYPES, **check_params)
    X = out[0] if isinstance(out, tuple) else out
    _check_float32_range(X)
    shape = nd_shape or fitted_shape or canvas_shape(X.shape[1])
    return (*out, shape) if isinstance(out, tuple) else (out, shape)
