"""Save a fitted model to a model file, and load it back."""

import os
import warnings

from sklearn.utils.validation import check_is_fitted

from ._container import ESTIMATOR, WEIGHTS, parse_json, read_model_file, refuse, write_model_file
from ._tree import Reader, Writer, check_device


def save(estimator, path):
    """Save a fitted model to a single file, safely and atomically.

    The file holds the network weights in the safetensors format and the
    parameters, classes and preprocessing state as JSON, with a manifest of
    sha256 checksums and the sk_mnist version. :func:`load` reads it back
    without executing anything from it. The file is written to a temporary
    file next to ``path`` and renamed over it only when complete, so an
    interrupted save leaves any previous file at ``path`` intact.

    Parameters
    ----------
    estimator : estimator instance
        A fitted :class:`~sk_mnist.MNISTCNNClassifier` or
        :class:`~sk_mnist.DistilledCNNClassifier` (whose teacher must be one
        of these too), one of the transformers of :mod:`sk_mnist.preprocessing`, or a
        :class:`~sklearn.pipeline.Pipeline` or
        :class:`~sklearn.ensemble.VotingClassifier` made of them.
    path : str or path-like
        The file to write; an existing file is replaced.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``estimator`` is not fitted.
    TypeError
        If the estimator, or a parameter or attribute of it, is something the
        format cannot hold faithfully (another estimator class, callbacks, a
        custom architecture or optimizer class, a ``RandomState``). Nothing is
        written then; pickle or joblib can store such models for trusted use.

    See Also
    --------
    load : Read the model back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sk_mnist import MNISTCNNClassifier
    >>> from sk_mnist.persistence import load, save
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MNISTCNNClassifier(max_epochs=1, random_state=0)
    >>> clf = clf.fit(X[:300], y[:300])
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.skm")
    >>> save(clf, path)
    >>> restored = load(path)
    >>> restored
    MNISTCNNClassifier(max_epochs=1, random_state=0)
    >>> np.array_equal(restored.predict_proba(X), clf.predict_proba(X))
    True
    """
    check_is_fitted(estimator)
    writer = Writer()
    tree = writer.estimator(estimator, type(estimator).__name__)
    write_model_file(path, tree, writer.tensors)


def load(path, *, device=None):
    """Load a model saved by :func:`save`, executing nothing from the file.

    The file is checked before anything is built from it: its members, their
    sizes and sha256 checksums, the format version, every class it names
    (against an allow-list) and the tensors' names, shapes and dtypes. The
    restored model predicts bit for bit as the saved one did.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`.
    device : str or torch.device, default=None
        The device the restored classifiers compute on, which becomes their
        ``device`` parameter. None keeps the device they were saved with
        where it is available here, and otherwise loads them on the CPU (with
        a warning): a model saved on a GPU opens on a machine without one.

    Returns
    -------
    estimator : estimator instance
        The fitted estimator, of the class that was saved. A classifier comes
        back with its optimizer's state, history and rehearsal buffer, so
        ``partial_fit`` continues exactly as it would have on the saved one.

    Raises
    ------
    TypeError
        If ``device`` is not None, a str or a torch.device.
    ValueError
        If ``device`` names no device, or one not available here. If the
        file is not an sk_mnist model file (a pickle, another archive,
        another format version), is truncated or damaged (checksum
        mismatch), or describes something the format does not allow. The
        message names the file and the problem.

    Warns
    -----
    UserWarning
        If the file was saved by another version of sk_mnist, or (when
        ``device`` is None) for a device not available here.

    See Also
    --------
    save : Write a model.

    Examples
    --------
    >>> import os, tempfile
    >>> from sk_mnist.persistence import load
    >>> path = os.path.join(tempfile.mkdtemp(), "model.pkl")
    >>> with open(path, "wb") as fh:
    ...     _ = fh.write(b"\\x80\\x04\\x95...")  # the start of a pickle
    >>> load(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ...model.pkl: not an sk_mnist model file: it looks like a pickle...
    """
    from .. import __version__

    check_device(device)
    name = os.fspath(path)
    tree, tensors, version = read_model_file(path)
    if version != __version__:
        warnings.warn(
            f"{name} was saved with sk_mnist {version!r} and is loaded with sk_mnist {__version__}; "
            "the format is the same, but the networks' code may differ.",
            UserWarning,
            stacklevel=2,
        )
    reader = Reader(tensors, device)
    try:
        estimator = reader.estimator(parse_json(tree, ESTIMATOR), ESTIMATOR)
        check_is_fitted(estimator)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, RecursionError) as exc:
        # Every way a description can be malformed: mistyped values, unknown
        # names, nesting too deep for the parser, tensors that do not fit.
        raise refuse(name, f"invalid model description: {exc}") from exc
    unused = sorted(set(tensors) - reader.used)
    if unused:
        raise refuse(name, f"{WEIGHTS} holds tensors no estimator uses: {unused[:5]}.")
    if reader.absent_devices:
        warnings.warn(
            f"{name} was saved for device {', '.join(map(repr, sorted(reader.absent_devices)))}, "
            "which is not available here; loaded on the CPU.",
            UserWarning,
            stacklevel=2,
        )
    return estimator
