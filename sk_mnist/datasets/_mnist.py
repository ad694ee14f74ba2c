"""The bundled MNIST data set: checksum verification, decoding and caching."""

import errno
import hashlib
import json
import os
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from .._files import atomic_write
from ._idx import read_idx

__all__ = ["get_data_home", "load_mnist"]

# sha256 of the *decompressed* IDX files, as published with the data set's
# provenance note; the gzip wrapper may differ between recompressions.
_FILES = {
    "train-images": (
        "train-images-idx3-ubyte.gz",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train-labels": (
        "train-labels-idx1-ubyte.gz",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test-images": (
        "t10k-images-idx3-ubyte.gz",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test-labels": (
        "t10k-labels-idx1-ubyte.gz",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
_SUBSETS = {"train": ("train",), "test": ("test",), "all": ("train", "test")}
_EXPECTED_SHAPES = {
    "train-images": (60000, 28, 28),
    "train-labels": (60000,),
    "test-images": (10000, 28, 28),
    "test-labels": (10000,),
}
# What the cache holds: the arrays as read_idx decodes them, C order.
_CACHED_DTYPE = np.dtype(np.uint8)
_NPY_VERSION = (1, 0)
# Bump when the layout of the cache changes, so that old caches are rebuilt.
_CACHE_VERSION = 1
DATA_HOME_ENV = "SK_MNIST_DATA_HOME"

DESCR = """\
.. _mnist_dataset:

MNIST handwritten digits
------------------------

**Data Set Characteristics:**

:Number of Instances: 70,000 (60,000 training, 10,000 test)
:Number of Attributes: 784 (28 x 28 grayscale pixels)
:Attribute Information: pixel intensity, 0 (background) to 255 (ink)
:Classes: 10 (the digits 0-9)
:Creator: Yann LeCun, Corinna Cortes and Christopher J.C. Burges
:License: Creative Commons Attribution-Share Alike 3.0

The MNIST database was built from NIST's Special Databases 1 and 3: the digits
were size-normalized to fit a 20x20 box, preserving aspect ratio, and centred by
centre of mass in a 28x28 field. The training set holds digits by 250 writers;
the test set's writers are disjoint from the training set's.

The copy bundled with sk_mnist is the four original IDX files, recompressed;
their decompressed contents are verified against published sha256 checksums
before first use.

.. topic:: References

  - Y. LeCun, L. Bottou, Y. Bengio and P. Haffner, "Gradient-based learning
    applied to document recognition", Proceedings of the IEEE 86(11),
    2278-2324, 1998.
"""


def get_data_home(data_home=None):
    """Return the folder in which decoded MNIST arrays are cached.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. If None, the environment variable
        ``SK_MNIST_DATA_HOME`` names it; if that is unset too,
        ``$XDG_CACHE_HOME/sk_mnist`` (``~/.cache/sk_mnist`` by default).

    Returns
    -------
    data_home : pathlib.Path
        The folder; it is created if it does not exist.

    Examples
    --------
    >>> from sk_mnist.datasets import get_data_home
    >>> get_data_home("/tmp/mnist_cache").name
    'mnist_cache'
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV)
    if data_home is None:
        cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        data_home = Path(cache_root) / "sk_mnist"
    path = Path(data_home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _bundled(filename):
    return resources.files(__package__) / "data" / filename


def _decode_verified(key):
    """Decode one bundled IDX file, refusing it unless its checksum matches."""
    filename, expected = _FILES[key]
    with resources.as_file(_bundled(filename)) as path, open(path, "rb") as fh:
        array = read_idx(fh)
    # The checksum covers the decompressed IDX bytes: header and payload.
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    digest = hashlib.sha256(header + array.tobytes()).hexdigest()
    if digest != expected or array.shape != _EXPECTED_SHAPES[key]:
        raise ValueError(
            f"The bundled MNIST file {filename} failed its integrity check: "
            f"sha256 of its content is {digest}, expected {expected}. "
            "The installation is damaged; reinstall sk_mnist."
        )
    return array


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _read_npy(path, key):
    """Return the cached array, or None unless its header is the one the cache writes.

    The manifest's digest covers the data bytes only, so an edited header
    (another dtype, shape or order over the same bytes) is caught here; the
    header is checked before any data is read, so it cannot ask for memory.
    """
    with open(path, "rb") as fh:
        if np.lib.format.read_magic(fh) != _NPY_VERSION:
            return None
        header = np.lib.format.read_array_header_1_0(fh)
        if header != (_EXPECTED_SHAPES[key], False, _CACHED_DTYPE):
            return None
        fh.seek(0)
        return np.load(fh, allow_pickle=False)


def _write_npy(fh, array):
    # Not np.save: its ndarray.tofile reports a full disk as "N requested and
    # M written" without errno; a file object's write raises ENOSPC.
    np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(array))
    fh.write(np.ascontiguousarray(array).data)


def _store(path, write):
    """Write one cache file atomically; return the OSError that prevented it, if any.

    A full disk is raised as an error naming the file. Any other refusal (a
    read-only or unwritable ``data_home``, a folder in the file's place) is
    returned: the data are verified and correct, only left uncached.
    """
    try:
        atomic_write(path, write)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(
                exc.errno,
                f"Cannot cache the MNIST data: the disk is full ({exc.strerror}); nothing was "
                "written. Free some space, or pass another data_home",
                os.fspath(path),
            ) from exc
        return exc
    return None


def _load_cached(key, data_home):
    """Return the decoded array for ``key``, from the cache when it is sound.

    The cache holds one ``.npy`` per file and a JSON manifest of their sha256
    digests, tied to the checksum of the source file: an entry whose header,
    digest or source does not match (corrupt, empty, truncated, edited,
    stale) is rebuilt, never used. Also returns the OSError that kept a
    rebuilt entry from being cached, or None.
    """
    npy = data_home / f"mnist-{key}.npy"
    manifest = data_home / f"mnist-{key}.json"
    source_sha = _FILES[key][1]
    try:
        meta = json.loads(manifest.read_text())
        if meta["version"] == _CACHE_VERSION and meta["source_sha256"] == source_sha:
            array = _read_npy(npy, key)
            if array is not None and _digest(array) == meta["array_sha256"]:
                return array, None
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or corrupt cache entry: rebuilt below
    array = _decode_verified(key)
    error = _store(npy, lambda fh: _write_npy(fh, array))
    if error is None:
        meta = {"version": _CACHE_VERSION, "source_sha256": source_sha, "array_sha256": _digest(array)}
        error = _store(manifest, lambda fh: fh.write(json.dumps(meta).encode()))
    return array, error


def _load_subset(subset, home):
    """Return the image and label arrays of ``subset``, and the errors that kept any uncached."""
    images, labels, errors = [], [], []
    for part in _SUBSETS[subset]:
        for kind, arrays in (("images", images), ("labels", labels)):
            array, error = _load_cached(f"{part}-{kind}", home)
            arrays.append(array)
            if error is not None:
                errors.append(error)
    return images, labels, errors


def load_mnist(subset="train", *, return_X_y=False, as_frame=False, data_home=None):
    """Load the MNIST handwritten digits data set (classification).

    The data ship with the package as the four original IDX files. On first use
    each file is decompressed, checked against its published sha256 checksum
    and cached as a ``.npy`` array; later calls read the cache, which is
    itself checksummed and rebuilt if damaged.

    =================   ==============
    Classes                         10
    Samples total               70,000
    Samples (train)             60,000
    Samples (test)              10,000
    Dimensionality       784 (28 x 28)
    Features            integers 0-255
    =================   ==============

    Parameters
    ----------
    subset : {"train", "test", "all"}, default="train"
        Which part to load: the 60,000 training images, the 10,000 test
        images, or all 70,000 with the training images first.

    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    as_frame : bool, default=False
        If True, ``data`` is a pandas DataFrame with one column per pixel,
        ``target`` a Series, and ``frame`` a DataFrame holding both.
        Requires pandas.

    data_home : str or path-like, default=None
        The cache folder; see :func:`get_data_home`.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : ndarray of shape (n_samples, 784), dtype uint8, or DataFrame
            One flattened image per row, pixel ``(r, c)`` in column ``28 * r + c``.
        images : ndarray of shape (n_samples, 28, 28), dtype uint8
            The same pixels as images (a view of ``data``).
        target : ndarray of shape (n_samples,), dtype int64, or Series
            The digit each image shows.
        feature_names : list of str
            ``"pixel_R_C"`` for row R and column C.
        target_names : ndarray of shape (10,)
            The digits 0 to 9.
        frame : DataFrame of shape (n_samples, 785)
            Only when ``as_frame=True``: ``data`` and ``target`` together.
        DESCR : str
            A description of the data set, with its citation.

    (data, target) : tuple if ``return_X_y`` is True
        ``data`` and ``target`` as described above.

    Raises
    ------
    ValueError
        If ``subset`` is not one of the three names, or if a bundled file fails
        its integrity check.
    OSError
        If the disk is full when the cache is written; nothing is left
        half-written.

    Warns
    -----
    UserWarning
        If the cache cannot be written for another reason (a read-only
        ``data_home``, a folder where a cache file belongs): the data are
        returned uncached.

    See Also
    --------
    read_idx : The strict IDX reader used to decode the files.
    sklearn.datasets.load_digits : The 8x8 digits bundled with scikit-learn.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> X, y = load_mnist("test", return_X_y=True)
    >>> X.shape, X.dtype, y.shape
    ((10000, 784), dtype('uint8'), (10000,))
    >>> int(y[0])
    7
    """
    if subset not in _SUBSETS:
        raise ValueError(f"subset must be one of 'train', 'test' or 'all'; got {subset!r}.")
    home = get_data_home(data_home)
    images, labels, errors = _load_subset(subset, home)
    if errors:
        warnings.warn(
            f"Cannot cache the MNIST data in {home} ({errors[0]}); they are returned "
            "uncached and will be decoded again next time. Pass a writable data_home "
            "to cache them.",
            UserWarning,
            stacklevel=2,
        )
    images = images[0] if len(images) == 1 else np.concatenate(images)
    target = (labels[0] if len(labels) == 1 else np.concatenate(labels)).astype(np.int64)
    data = images.reshape(len(images), -1)
    feature_names = [f"pixel_{r}_{c}" for r in range(28) for c in range(28)]

    frame = None
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is a test dependency
            raise ImportError("load_mnist(as_frame=True) requires pandas: pip install pandas") from exc
        frame = pd.DataFrame(data, columns=feature_names)
        frame["target"] = target
        data, target = frame[feature_names], frame["target"]

    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=images,
        target=target,
        feature_names=feature_names,
        target_names=np.arange(10),
        frame=frame,
        DESCR=DESCR,
    )
