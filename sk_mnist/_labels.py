"""The one check that new labels are of the kind a model was fitted on."""

import numpy as np


def _kind(labels):
    """``"number"`` or ``"string"``: what kind of labels ``labels`` holds."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "O":  # scikit-learn's string labels often come as objects
        labels = np.array(labels.tolist())
    return "string" if labels.dtype.kind in "US" else "number"


def check_label_kind(y, classes, owner):
    """Refuse labels of another kind (strings against numbers) than ``classes``.

    Without it, numpy's set operations would silently turn numbers into
    strings: ``np.union1d([7], ["7"])`` is ``['7', '7']``, and every later
    comparison of labels with ``classes`` would count false.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        The new labels.
    classes : ndarray of shape (n_classes,)
        The labels the model was fitted on.
    owner : str
        Who asks, for the message.

    Examples
    --------
    >>> import numpy as np
    >>> check_label_kind([1, 2], np.array([0, 1, 2]), "model")
    >>> check_label_kind(["1"], np.array([0, 1, 2]), "model")
    Traceback (most recent call last):
    ...
    ValueError: y holds string labels, but model was fitted on number labels ([0, 1, 2]).
    """
    given, fitted = _kind(y), _kind(classes)
    if given != fitted:
        raise ValueError(
            f"y holds {given} labels, but {owner} was fitted on {fitted} labels ({np.asarray(classes).tolist()})."
        )
