"""Save and load fitted models without pickle.

:func:`save` writes a fitted :class:`~sk_mnist.MNISTCNNClassifier` (or
:class:`~sk_mnist.DistilledCNNClassifier`, with its teacher if the format can
hold that), one of the transformers of :mod:`sk_mnist.preprocessing`, a
:class:`~sklearn.pipeline.Pipeline` of them or a
:class:`~sklearn.ensemble.VotingClassifier` of CNNs (as
:func:`~sk_mnist.make_cnn_ensemble` builds) to a single file; :func:`load`
reads it back (both are also ``sk_mnist.save`` and ``sk_mnist.load``).
Loading never unpickles and never executes anything from the file, so opening a model file from an untrusted source runs none of its
author's code. (The checksums catch damage, not forgery: anyone can write a
valid file, and an untrusted file still holds an untrusted model.)

The file is a zip archive of exactly three members:

``manifest.json``
    The format's name and version, the sk_mnist version that wrote the file,
    the class of the saved estimator, and the size and sha256 of the two
    other members.
``estimator.json``
    The estimator as a tree of nodes, one per estimator: its class (named from
    an allow-list), its constructor parameters, its fitted state and, for a
    classifier, its optimizer's state, as JSON. Values JSON has no type for
    are tagged: ``{"__tuple__": [...]}``, ``{"__dict__": {...}}`` (string
    keys), ``{"__items__": [[key, value], ...]}`` (any other keys, such as a
    ``class_weight``'s labels),
    ``{"__ndarray__": {"dtype", "shape", "data" or "tensor"}}``,
    ``{"__tensor__": key}``, ``{"__class__": name}`` (torch optimizers and the
    architectures of ``sk_mnist.modules.ARCHITECTURES`` only),
    ``{"__device__": ...}``, ``{"__path__": ...}``, ``{"__history__": [...]}``
    (a skorch History) and ``{"__estimator__": node}`` for nested estimators.
``weights.safetensors``
    Every tensor, in the safetensors format: the networks' ``state_dict``
    keyed ``"<network>/<name>"`` (the networks numbered from 0 in the order
    the tree lists them, each node naming its number in ``"weights"``), the
    optimizers' state (``"tensors/<n>"``)
    and numeric arrays of more than 1024 values such as the rehearsal buffer
    (``"arrays/<n>"``). Stored uncompressed, so the file's size bounds it.

Reading trusts nothing: the members must be exactly these three, the JSON
members are read within size limits, the checksums must match, and the
tensors must have exactly the names, shapes and dtypes of the network the
parameters describe, which is checked on PyTorch's "meta" device before any
memory is allocated for it. Anything else is a ``ValueError`` naming the file
and the problem.
"""

from ._by_suffix import SAFE_SUFFIX, SKOPS_SUFFIX, load_model, save_model
from ._io import load, save

__all__ = ["SAFE_SUFFIX", "SKOPS_SUFFIX", "load", "load_model", "save", "save_model"]
