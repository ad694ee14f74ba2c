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

import hashlib
import json
import os
import re
import warnings
import zipfile
import zlib
from inspect import signature
from pathlib import Path, PurePath

import joblib
import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.ensemble import VotingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from ._classifier import MNISTCNNClassifier
from ._files import atomic_write
from ._images import canvas_shape
from ._optional import require
from ._training import resolve_device
from .distill import DistilledCNNClassifier
from .modules import ARCHITECTURES
from .preprocessing import Deskewer, GlobalStandardizer, PixelScaler

__all__ = ["load", "load_model", "save", "save_model"]

FORMAT = "sk_mnist-model"
FORMAT_VERSION = 1
MANIFEST, ESTIMATOR, WEIGHTS = "manifest.json", "estimator.json", "weights.safetensors"
# Upper bounds on the decompressed JSON members, checked before they are read:
# a deflated member could otherwise expand to any size. The weights are stored
# uncompressed, so the file's own size bounds them.
_MAX_JSON_BYTES = {MANIFEST: 1 << 16, ESTIMATOR: 1 << 26}
# A fixed timestamp: saving the same model twice gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Numeric arrays up to this many values are written in the JSON, readable;
# larger ones (a rehearsal buffer) as tensors in weights.safetensors.
_JSON_ARRAY_MAX = 1024
_PICKLE_PROTOCOL_2_PLUS = 0x80
# The values each kind of JSON array holds, and their name in messages.
# bool is an int in Python: True in an integer array is 1, as numpy has it.
_ARRAY_VALUES = {
    "b": (bool, "booleans"),
    "i": (int, "integers"),
    "u": (int, "integers"),
    "f": ((int, float), "numbers"),
    "U": (str, "strings"),
    "O": ((str, int, float, bool), "strings and numbers"),
}
# numpy's limit on an array's dimensions (32 before numpy 2).
_MAX_NDIM = 64


class _Spec:
    """What the format stores of one estimator class and how to restore it.

    ``state`` names the fitted attributes stored (``required`` those a fitted
    estimator must have); ``rebuilt`` the attributes that restoring
    recreates rather than reads. An estimator holding any other attribute is
    refused at save time, so that nothing is ever silently left out.
    """

    def __init__(self, cls, state=(), required=(), rebuilt=(), restore=None):
        self.cls = cls
        self.state = state
        self.required = required
        self.rebuilt = rebuilt
        self.restore = restore


def _routed_prefixes(cls):
    # skorch's prefixes of routed parameters; those of its three components
    # (``module__*``, ...) are registered only when they are initialized.
    return {*cls.prefixes_, "module", "criterion", "optimizer"}


def _restore_classifier(net, reader, node, where):
    """Build ``module_`` from the restored attributes, then load its weights and optimizer."""
    tensors = reader.tensors_for(node, where)
    _check_image_shape(net, where)
    _check_rehearsal(net, where)
    # First on the meta device, which allocates nothing: the parameters alone
    # decide the network's size, so they must agree with the stored tensors
    # before a real network is built.
    # skorch lets components be set only inside its init context.
    with torch.device("meta"), net._current_init_context("module"):
        net.initialize_module()
    expected = {name: (t.dtype, tuple(t.shape)) for name, t in net.module_.state_dict().items()}
    found = {name: (t.dtype, tuple(t.shape)) for name, t in tensors.items()}
    if expected != found:
        differ = sorted(
            name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name)
        )
        raise ValueError(
            f"{where}: the stored weights do not fit the network its parameters describe "
            f"(tensors that differ in name, shape or dtype: {differ[:5]})."
        )
    # initialize() clears the history in place: keep the restored one aside.
    history = vars(net).pop("history_")
    # initialize() draws initial weights, about to be overwritten, from torch's
    # global generator: fork it so that loading leaves the caller's random state alone.
    with torch.random.fork_rng(devices=[]):
        net.initialize()
    net.module_.load_state_dict(tensors)
    net.history_ = history
    # The optimizer's state too (Adam's moments), so that partial_fit goes on
    # exactly as it would have on the saved classifier.
    optimizer = node.get("optimizer")
    _check_keys(optimizer, ("param_groups", "state"), f"{where}.optimizer")
    entries = optimizer["state"]
    if not (
        isinstance(entries, list)
        and all(isinstance(e, list) and len(e) == 2 and type(e[0]) is int for e in entries)
    ):
        raise ValueError(f"{where}.optimizer: state must be a list of [parameter index, state] pairs")
    net.optimizer_.load_state_dict(
        {
            "state": {index: reader.value(values, f"{where}.optimizer") for index, values in entries},
            "param_groups": reader.value(optimizer["param_groups"], f"{where}.optimizer"),
        }
    )


def _check_rehearsal(net, where):
    """Refuse a rehearsal buffer whose images, labels and weights do not match up.

    A file written before sample weights existed has no weights: its samples
    all weighed 1.
    """
    if not hasattr(net, "rehearsal_X_"):
        return
    if not hasattr(net, "rehearsal_sample_weight_") and hasattr(net, "rehearsal_y_"):
        net.rehearsal_sample_weight_ = np.ones(len(net.rehearsal_y_))
    parts = [
        getattr(net, name, None) for name in ("rehearsal_X_", "rehearsal_y_", "rehearsal_sample_weight_")
    ]
    if not (
        all(isinstance(part, np.ndarray) for part in parts)
        and parts[0].ndim >= 2
        and parts[1].ndim == parts[2].ndim == 1
        and len(parts[0]) == len(parts[1]) == len(parts[2])
        and parts[2].dtype.kind == "f"
        and np.all(np.isfinite(parts[2]) & (parts[2] >= 0))
    ):
        raise ValueError(
            f"{where}: rehearsal_X_, rehearsal_y_ and rehearsal_sample_weight_ must be arrays holding "
            "one image, one label and one non-negative weight per rehearsed sample"
        )


def _check_image_shape(net, where):
    """Refuse an image shape that the fitted number of pixels could not have given.

    The network's weights do not depend on the image size, so nothing else
    ties it to the file: a shape of a million by a million pixels would load,
    and then allocate terabytes at the first prediction.
    """
    shape, n_features = net.image_shape_, net.n_features_in_
    if not (
        type(n_features) is int
        and n_features > 0
        and isinstance(shape, tuple)
        and len(shape) == 3
        and all(type(d) is int and d > 0 for d in shape)
        and (shape == canvas_shape(n_features) or np.prod(shape, dtype=object) == n_features)
    ):
        raise ValueError(
            f"{where}: image_shape_ {shape!r} is not a (channels, height, width) shape that "
            f"{n_features!r} pixels fill"
        )


def _restore_voting(ensemble, reader, node, where):
    # Derived as VotingClassifier.fit derives it: names to fitted members, "drop" kept.
    members = iter(ensemble.estimators_)
    ensemble.named_estimators_ = Bunch(
        **{name: est if isinstance(est, str) else next(members) for name, est in ensemble.estimators}
    )


_FEATURES = ("n_features_in_", "feature_names_in_")
_OUTPUT_CONFIG = "_sklearn_output_config"  # what set_output() records
_CLASSIFIER_STATE = (
    "classes_inferred_",
    "image_shape_",
    "pixel_mean_",
    "pixel_std_",
    *_FEATURES,
    "n_iter_",
    "history_",
    # The buffer partial_fit rehearses: a sample of the training data.
    "rehearsal_X_",
    "rehearsal_y_",
    "rehearsal_sample_weight_",
    "n_samples_seen_",
)
_CLASSIFIER_REQUIRED = (
    "classes_inferred_",
    "image_shape_",
    "pixel_mean_",
    "pixel_std_",
    "n_features_in_",
    "history_",
)
# Everything skorch's initialize() creates, plus what __init__ derives.
_CLASSIFIER_REBUILT = (
    "module_",
    "criterion_",
    "optimizer_",
    "callbacks_",
    "initialized_",
    "virtual_params_",
    "prefixes_",
    "cuda_dependent_attributes_",
    "init_context_",
    "_modules",
    "_criteria",
    "_optimizers",
    "_params_to_validate",
)
_SPECS = {
    "sk_mnist.MNISTCNNClassifier": _Spec(
        MNISTCNNClassifier,
        state=_CLASSIFIER_STATE,
        required=_CLASSIFIER_REQUIRED,
        rebuilt=_CLASSIFIER_REBUILT,
        restore=_restore_classifier,
    ),
    # The student, and its fitted teacher as a nested estimator (which must be
    # one the format holds); a teacher given fitted is also a parameter, and
    # is then stored twice.
    "sk_mnist.DistilledCNNClassifier": _Spec(
        DistilledCNNClassifier,
        state=(*_CLASSIFIER_STATE, "teacher_"),
        required=(*_CLASSIFIER_REQUIRED, "teacher_"),
        rebuilt=_CLASSIFIER_REBUILT,
        restore=_restore_classifier,
    ),
    "sk_mnist.preprocessing.PixelScaler": _Spec(
        PixelScaler, state=(*_FEATURES, _OUTPUT_CONFIG), required=("n_features_in_",)
    ),
    "sk_mnist.preprocessing.GlobalStandardizer": _Spec(
        GlobalStandardizer,
        state=(*_FEATURES, "mean_", "scale_", _OUTPUT_CONFIG),
        required=("n_features_in_", "mean_", "scale_"),
    ),
    "sk_mnist.preprocessing.Deskewer": _Spec(
        Deskewer, state=(*_FEATURES, _OUTPUT_CONFIG), required=("n_features_in_",)
    ),
    # A pipeline's fitted state is that of its steps, which are parameters.
    "sklearn.pipeline.Pipeline": _Spec(Pipeline, state=(_OUTPUT_CONFIG,)),
    "sklearn.ensemble.VotingClassifier": _Spec(
        VotingClassifier,
        state=("estimators_", "le_", "classes_", "feature_names_in_"),
        required=("estimators_", "le_", "classes_"),
        rebuilt=("named_estimators_",),
        restore=_restore_voting,
    ),
    "sklearn.preprocessing.LabelEncoder": _Spec(LabelEncoder, state=("classes_",), required=("classes_",)),
}
_SPEC_NAMES = {spec.cls: name for name, spec in _SPECS.items()}


def _allowed_classes():
    """Classes a model file may name as parameter values, by dotted name.

    torch's optimizers and the registered architectures; built at each call so
    that architectures added to ``ARCHITECTURES`` are included.
    """
    allowed = {
        f"torch.optim.{name}": obj
        for name, obj in vars(torch.optim).items()
        if isinstance(obj, type)
        and issubclass(obj, torch.optim.Optimizer)
        and obj is not torch.optim.Optimizer
    }
    allowed.update({f"{cls.__module__}.{cls.__qualname__}": cls for cls in ARCHITECTURES.values()})
    return allowed


# -- writing ------------------------------------------------------------------


class _Writer:
    """Turns an estimator tree into JSON nodes and collects the networks' tensors."""

    def __init__(self):
        self.tensors = {}
        self.networks = self.blobs = 0
        self._allowed = {cls: name for name, cls in _allowed_classes().items()}

    def estimator(self, est, where):
        name = _SPEC_NAMES.get(type(est))
        if name is None:
            raise TypeError(
                f"{where}: a model file can hold MNISTCNNClassifier, DistilledCNNClassifier, the "
                "sk_mnist.preprocessing transformers, and Pipeline or VotingClassifier of them; "
                f"not {type(est).__module__}.{type(est).__qualname__}. "
                "Use pickle or joblib for it (trusted use only)."
            )
        spec = _SPECS[name]
        params = est.get_params(deep=False)
        unknown = sorted(set(vars(est)) - set(params) - set(spec.state) - set(spec.rebuilt))
        if unknown:
            raise TypeError(
                f"{where}: {type(est).__name__} holds attributes {unknown} that the model "
                "format does not cover; use pickle or joblib for it (trusted use only)."
            )
        node = {
            "class": name,
            "params": {key: self.value(params[key], f"{where}.{key}") for key in sorted(params)},
            "state": {
                key: self.value(vars(est)[key], f"{where}.{key}") for key in spec.state if key in vars(est)
            },
        }
        if spec.restore is _restore_classifier and node["state"]:
            node["weights"] = prefix = str(self.networks)
            self.networks += 1
            for key, tensor in est.module_.state_dict().items():
                self.tensors[f"{prefix}/{key}"] = _detached(tensor)
            optimizer = est.optimizer_.state_dict()
            node["optimizer"] = {
                "param_groups": self.value(optimizer["param_groups"], f"{where}.optimizer_"),
                "state": [
                    [index, self.value(values, f"{where}.optimizer_")]
                    for index, values in sorted(optimizer["state"].items())
                ],
            }
        return node

    def blob(self, kind, tensor):
        """Store ``tensor`` with the weights; return its key."""
        key = f"{kind}/{self.blobs}"
        self.blobs += 1
        self.tensors[key] = tensor
        return key

    def value(self, value, where):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, np.generic) and value.dtype.kind in "biuf":
            return value.item()
        if isinstance(value, History):  # before list, which History subclasses
            return {"__history__": _plain_json(value.to_list(), where)}
        if isinstance(value, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"__tuple__": [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if type(value) is dict and all(isinstance(key, str) for key in value):
            return {"__dict__": {key: self.value(v, f"{where}[{key!r}]") for key, v in value.items()}}
        if type(value) is dict:  # keys JSON objects cannot have: labels, say
            return {
                "__items__": [
                    [self.value(key, f"{where} key {key!r}"), self.value(v, f"{where}[{key!r}]")]
                    for key, v in value.items()
                ]
            }
        if isinstance(value, np.ndarray):
            return {"__ndarray__": self.array(value, where)}
        if isinstance(value, torch.Tensor):
            return {"__tensor__": self.blob("tensors", _detached(value))}
        if isinstance(value, type):
            if value not in self._allowed:
                raise TypeError(
                    f"{where}: a model file names only torch's optimizers and the architectures of "
                    f"sk_mnist.modules.ARCHITECTURES, not {value.__module__}.{value.__qualname__}. "
                    "Use pickle or joblib for it (trusted use only)."
                )
            return {"__class__": self._allowed[value]}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, PurePath):
            return {"__path__": str(value)}
        if isinstance(value, BaseEstimator):
            return {"__estimator__": self.estimator(value, where)}
        hint = ""
        if where.rsplit(".", 1)[-1].startswith("callbacks"):
            hint = " Callbacks act only during fit: set_params(callbacks=None) before saving."
        raise TypeError(
            f"{where}: a model file cannot hold a {type(value).__module__}.{type(value).__qualname__}; "
            "it holds JSON values, numpy arrays, torch optimizers and the architectures of "
            f"sk_mnist.modules.{hint} Use pickle or joblib for it (trusted use only)."
        )

    def array(self, array, where):
        if array.dtype.kind not in "biufUO":  # structured dtypes are of kind "V"
            raise TypeError(f"{where}: a model file cannot hold arrays of dtype {array.dtype}.")
        if array.dtype.kind in "biuf" and array.size > _JSON_ARRAY_MAX:
            # Bulk numbers go with the weights, as a tensor, in native byte order.
            array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
            key = self.blob("arrays", torch.from_numpy(array.copy()))
            return {"dtype": array.dtype.str, "shape": list(array.shape), "tensor": key}
        data = array.ravel().tolist()
        if array.dtype.kind == "O" and not all(isinstance(v, (str, int, float, bool)) for v in data):
            raise TypeError(f"{where}: a model file holds object arrays only of strings and numbers.")
        width = array.dtype.itemsize // 4
        if array.dtype.kind == "U" and data and max(map(len, data)) < width:
            # load refuses string widths that no string in the data needs (they
            # would let a few bytes of JSON allocate gigabytes); numpy strips
            # trailing NULs, so padding one string with them keeps the width.
            data[0] = data[0].ljust(width, "\0")
        return {"dtype": array.dtype.str, "shape": list(array.shape), "data": data}


def _detached(tensor):
    # A private contiguous CPU copy: safetensors refuses tensors that share memory.
    return tensor.detach().to("cpu", copy=True).contiguous()


def _plain_json(value, where):
    """Check that ``value`` is plain JSON (numpy scalars become Python ones)."""

    def scalar(obj):
        if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
            return obj.item()
        raise TypeError(
            f"{where}: a model file cannot hold a {type(obj).__qualname__} in the training history."
        )

    return json.loads(json.dumps(value, default=scalar))


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
    from . import __version__

    safetensors_torch = require("safetensors.torch", "persistence", "sk_mnist.persistence")
    check_is_fitted(estimator)
    writer = _Writer()
    tree = writer.estimator(estimator, type(estimator).__name__)
    members = {ESTIMATOR: json.dumps(tree).encode(), WEIGHTS: safetensors_torch.save(writer.tensors)}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sk_mnist_version": __version__,
        "estimator": tree["class"],
        "members": {
            name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in members.items()
        },
    }
    members = {MANIFEST: json.dumps(manifest, indent=1).encode(), **members}

    def write(fh):
        with zipfile.ZipFile(fh, "w") as archive:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_STORED if name == WEIGHTS else zipfile.ZIP_DEFLATED
                archive.writestr(info, data)

    atomic_write(path, write)


# -- reading ------------------------------------------------------------------


def _json(data, what):
    """Parse JSON, refusing duplicate keys (two readers could pick different ones)."""

    def unique(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{what} repeats a key")
        return dict(pairs)

    return json.loads(data.decode("utf-8"), object_pairs_hook=unique)


def _check_keys(mapping, required, where, optional=()):
    if not isinstance(mapping, dict):
        raise ValueError(f"{where} must be a JSON object")
    keys = set(mapping)
    if not set(required) <= keys <= {*required, *optional}:
        raise ValueError(f"{where} has keys {sorted(keys)}; expected {sorted(required)}")


class _Reader:
    """Rebuilds estimators from JSON nodes and the stored tensors."""

    def __init__(self, tensors, device=None):
        self.tensors = tensors
        self.used = set()
        self._allowed = _allowed_classes()
        self.device = device
        # Saved devices not available here, whose classifiers load on the CPU.
        self.absent_devices = set()

    def tensors_for(self, node, where):
        prefix = node.get("weights")
        if not isinstance(prefix, str):
            raise ValueError(f"{where}: a fitted network needs a 'weights' entry")
        found = {key[len(prefix) + 1 :]: t for key, t in self.tensors.items() if key.startswith(prefix + "/")}
        self.used.update(f"{prefix}/{key}" for key in found)
        return found

    def estimator(self, node, where):
        _check_keys(node, ("class", "params", "state"), where, optional=("weights", "optimizer"))
        spec = _SPECS.get(node["class"])
        if spec is None:
            raise ValueError(f"{where}: estimator class {node['class']!r} is not one a model file may hold")
        params = self._mapping(node["params"], f"{where}.params")
        _check_param_names(spec.cls, params, where)
        if issubclass(spec.cls, MNISTCNNClassifier) and "device" in params:
            params["device"] = self._device(params["device"], f"{where}.params.device")
        est = spec.cls(**params)
        if isinstance(est, MNISTCNNClassifier):
            est._validate_hyperparameters()
        elif hasattr(est, "_parameter_constraints"):
            est._validate_params()
        state = self._mapping(node["state"], f"{where}.state")
        if state:
            unknown = sorted(set(state) - set(spec.state))
            missing = sorted(set(spec.required) - set(state))
            if unknown or missing:
                raise ValueError(f"{where}: fitted state has unknown {unknown} or misses {missing}")
            vars(est).update(state)
            if spec.restore is not None:
                spec.restore(est, self, node, where)
        return est

    def _device(self, saved, where):
        """The device a restored classifier computes on (see ``load``'s ``device``)."""
        if self.device is not None:
            return self.device
        if _device_available(saved, where):
            return saved
        self.absent_devices.add(str(saved))
        return "cpu"

    def _mapping(self, mapping, where):
        if not isinstance(mapping, dict):
            raise ValueError(f"{where} must be a JSON object")
        return {key: self.value(value, f"{where}.{key}") for key, value in mapping.items()}

    def value(self, value, where):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, list):
            return [self.value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if not (isinstance(value, dict) and len(value) == 1):
            raise ValueError(f"{where}: a JSON object must be a single tagged value")
        ((tag, content),) = value.items()
        if tag == "__tuple__" and isinstance(content, list):
            return tuple(self.value(v, f"{where}[{i}]") for i, v in enumerate(content))
        if tag == "__dict__" and isinstance(content, dict):
            return self._mapping(content, where)
        if tag == "__items__" and isinstance(content, list):
            return self._items(content, where)
        if tag == "__ndarray__":
            return self.array(content, where)
        if tag == "__tensor__" and isinstance(content, str) and content.startswith("tensors/"):
            return self.blob(content, where)
        if tag == "__history__" and isinstance(content, list) and all(isinstance(e, dict) for e in content):
            return History(content)
        if tag == "__class__" and content in self._allowed:
            return self._allowed[content]
        if tag == "__device__" and isinstance(content, str):
            return torch.device(content)
        if tag == "__path__" and isinstance(content, str):
            return Path(content)
        if tag == "__estimator__":
            return self.estimator(content, where)
        raise ValueError(f"{where}: {tag!r} with this content is not a value a model file may hold")

    def _items(self, content, where):
        """A dict stored as its ``[key, value]`` pairs; the keys must be distinct and hashable."""
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in content):
            raise ValueError(f"{where}: __items__ must be a list of [key, value] pairs")
        items = [
            (self.value(k, f"{where}[{i}]"), self.value(v, f"{where}[{i}]"))
            for i, (k, v) in enumerate(content)
        ]
        try:
            mapping = dict(items)
        except TypeError as exc:  # a key decoded to an unhashable value
            raise ValueError(f"{where}: a key of __items__ is not hashable") from exc
        if len(mapping) != len(items):
            raise ValueError(f"{where}: __items__ names a key twice")
        return mapping

    def blob(self, key, where):
        if key not in self.tensors:
            raise ValueError(f"{where}: no stored tensor {key!r}")
        self.used.add(key)
        return self.tensors[key]

    def array(self, content, where):
        if isinstance(content, dict) and "tensor" in content:
            _check_keys(content, ("dtype", "shape", "tensor"), where)
            key = content["tensor"]
            if not (isinstance(key, str) and key.startswith("arrays/")):
                raise ValueError(f"{where}: malformed array reference")
            array = self.blob(key, where).numpy()
            if array.dtype.str != content["dtype"] or list(array.shape) != content["shape"]:
                raise ValueError(f"{where}: the stored tensor does not have the declared dtype and shape")
            return array
        _check_keys(content, ("dtype", "shape", "data"), where)
        dtype = np.dtype(content["dtype"]) if isinstance(content["dtype"], str) else None
        shape, data = content["shape"], content["data"]
        # Structured and sub-array dtypes are of kind "V", which is not among them.
        if dtype is None or dtype.kind not in _ARRAY_VALUES:
            raise ValueError(f"{where}: arrays of dtype {content['dtype']!r} are not allowed")
        # Before the shape's product, which for a million dimensions would take
        # minutes to compute in Python integers.
        if isinstance(shape, list) and len(shape) > _MAX_NDIM:
            raise ValueError(
                f"{where}: the array declares {len(shape)} dimensions; numpy arrays have at most {_MAX_NDIM}"
            )
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise ValueError(f"{where}: malformed array shape")
        if not isinstance(data, list):
            raise ValueError(f"{where}: array data must be a flat list")  # noqa: TRY004 (a file's fault)
        if len(data) != int(np.prod(shape, dtype=object)):
            raise ValueError(f"{where}: {len(data)} array values for shape {tuple(shape)}")
        _check_array_values(dtype, data, where)
        # Filled element by element: np.array would turn a list of
        # equal-length strings into a 2-D array of characters for dtype object.
        array = np.empty(len(data), dtype=dtype)
        try:
            array[:] = data
        except OverflowError as exc:  # numpy's way of refusing 1000 as an int8
            raise ValueError(f"{where}: value out of range for {dtype} ({exc})") from exc
        return array.reshape(shape)


def _check_array_values(dtype, data, where):
    """Refuse values that numpy would convert silently, or memory the data does not need.

    Everything ``np.empty`` then allocates is bounded by the data's own size in
    the JSON: one value per element, and strings no wider than the longest.
    """
    types, what = _ARRAY_VALUES[dtype.kind]
    bad = [value for value in data if not isinstance(value, types)]
    if bad:
        raise ValueError(f"{where}: an array of dtype {dtype} holds only {what}; found {bad[0]!r}")
    if dtype.kind == "U" and data:
        width, longest = dtype.itemsize // 4, max(map(len, data))
        # Wider would allocate what the file does not hold; narrower would cut strings.
        if width != longest:
            raise ValueError(
                f"{where}: an array of dtype {dtype} declares strings of {width} characters, "
                f"but its longest string has {longest}"
            )


def _device_available(device, name):
    """Whether tensors can be made on ``device`` here; a ValueError if it names none."""
    try:
        torch_device = torch.device(resolve_device(device))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{name}={device!r} is not a torch device") from exc
    try:
        torch.empty(0, device=torch_device)
    # How torch reports a backend it was built without or a device it lacks.
    except (AssertionError, RuntimeError):
        return False
    # Tensors on the meta device hold no values: a network there cannot predict.
    return torch_device.type != "meta"


def _check_device(device):
    """Validate ``load``'s ``device`` argument before the file is opened."""
    if device is None:
        return
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be None, a str or a torch.device; got {type(device).__name__}")
    if not _device_available(device, "device"):
        raise ValueError(f"device={device!r} is not available here")


def _check_param_names(cls, params, where):
    # Constructor arguments become attributes: refuse names that could shadow
    # methods (skorch's routed ``prefix__name`` parameters are attributes too).
    names = set(signature(cls).parameters) - {"kwargs"}
    prefixes = _routed_prefixes(cls) if issubclass(cls, MNISTCNNClassifier) else set()
    for key in params:
        routed = re.fullmatch(r"([a-z_]+?)__\w+", key)
        if key not in names and not (routed and routed.group(1) in prefixes):
            raise ValueError(f"{where}: {cls.__name__} has no parameter {key!r}")


def _refuse(name, problem):
    return ValueError(f"{name}: {problem}")


def _read_members(archive, name):
    """The three members' bytes, read within limits, or a ValueError."""
    infos = archive.infolist()
    names = sorted(info.filename for info in infos)
    if names != sorted((MANIFEST, ESTIMATOR, WEIGHTS)):
        raise _refuse(
            name,
            f"not an sk_mnist model file: it holds the members {names[:10]}, where a model file "
            f"holds exactly {MANIFEST}, {ESTIMATOR} and {WEIGHTS}.",
        )
    members = {}
    for info in infos:
        allowed = (
            (zipfile.ZIP_STORED,) if info.filename == WEIGHTS else (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        )
        if info.flag_bits & 0x1 or info.compress_type not in allowed:
            raise _refuse(name, f"{info.filename} is encrypted or compressed in a way a model file never is.")
        if info.file_size > _MAX_JSON_BYTES.get(info.filename, float("inf")):
            raise _refuse(
                name, f"{info.filename} declares {info.file_size} bytes, more than a model file holds."
            )
        # zipfile stops at the declared size and checks the CRC-32.
        members[info.filename] = archive.read(info)
    return members


def _check_manifest(members, name):
    from . import __version__

    try:
        manifest = _json(members[MANIFEST], MANIFEST)
        _check_keys(
            manifest, ("format", "format_version", "sk_mnist_version", "estimator", "members"), MANIFEST
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise _refuse(name, f"not an sk_mnist model file: unreadable {MANIFEST} ({exc}).") from exc
    if manifest["format"] != FORMAT:
        raise _refuse(
            name, f"not an sk_mnist model file: its format is {manifest['format']!r}, not {FORMAT!r}."
        )
    version = manifest["format_version"]
    if version != FORMAT_VERSION:
        advice = (
            " Upgrade sk_mnist to read it." if isinstance(version, int) and version > FORMAT_VERSION else ""
        )
        raise _refuse(
            name,
            f"model format version {version!r} is not supported: sk_mnist {__version__} reads "
            f"version {FORMAT_VERSION}.{advice}",
        )
    checksums = manifest["members"]
    for member in (ESTIMATOR, WEIGHTS):
        data = members[member]
        entry = checksums.get(member) if isinstance(checksums, dict) else None
        if entry != {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}:
            raise _refuse(
                name,
                f"{member} fails its sha256 check against {MANIFEST}: the file was damaged or "
                "modified after it was saved.",
            )
    if manifest["sk_mnist_version"] != __version__:
        warnings.warn(
            f"{name} was saved with sk_mnist {manifest['sk_mnist_version']!r} and is loaded with "
            f"sk_mnist {__version__}; the format is the same, but the networks' code may differ.",
            UserWarning,
            stacklevel=3,
        )


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
    safetensors_torch = require("safetensors.torch", "persistence", "sk_mnist.persistence")
    _check_device(device)
    name = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head != b"PK\x03\x04":
            problem = "not an sk_mnist model file"
            if head[:1] == bytes([_PICKLE_PROTOCOL_2_PLUS]):
                problem += (
                    ": it looks like a pickle, which this function never loads (unpickling runs "
                    "code from the file); open it with joblib or pickle only if you trust its source"
                )
            raise _refuse(name, f"{problem}.")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as archive:
                members = _read_members(archive, name)
        # OSError: a damaged directory can send zipfile seeking before the start.
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            EOFError,
            zlib.error,
            NotImplementedError,
            OSError,
        ) as exc:
            raise _refuse(name, f"damaged model file: {exc}.") from exc
    _check_manifest(members, name)
    try:
        tensors = safetensors_torch.load(members[WEIGHTS])
    except Exception as exc:  # safetensors reports every malformation as its own error type
        raise _refuse(name, f"unreadable {WEIGHTS}: {exc}.") from exc
    reader = _Reader(tensors, device)
    try:
        tree = _json(members[ESTIMATOR], ESTIMATOR)
        estimator = reader.estimator(tree, ESTIMATOR)
        check_is_fitted(estimator)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, RecursionError) as exc:
        # Every way a description can be malformed: mistyped values, unknown
        # names, nesting too deep for the parser, tensors that do not fit.
        raise _refuse(name, f"invalid model description: {exc}") from exc
    unused = sorted(set(tensors) - reader.used)
    if unused:
        raise _refuse(name, f"{WEIGHTS} holds tensors no estimator uses: {unused[:5]}.")
    if reader.absent_devices:
        warnings.warn(
            f"{name} was saved for device {', '.join(map(repr, sorted(reader.absent_devices)))}, "
            "which is not available here; loaded on the CPU.",
            UserWarning,
            stacklevel=2,
        )
    return estimator


# -- Model files of any estimator, by suffix ------------------------------------

#: The formats of the model files :func:`save_model` writes and :func:`load_model`
#: reads, by suffix. ``.skm`` is this module's format: it holds this package's
#: estimators (the CNNs, the transformers, pipelines and ensembles of them).
#: ``.skops`` is skops.io's format, for scikit-learn's models (after the
#: package's transformers). Neither runs code from the file when loaded. Any
#: other path is a joblib pickle, which runs code on load: it is read only when
#: the caller says the file is trusted.
SAFE_SUFFIX = ".skm"
SKOPS_SUFFIX = ".skops"

#: Types outside skops' own trusted list that a ``.skops`` file may hold: the
#: package's transformers, scikit-learn's decision trees (the random forest)
#: and the MLP's optimizers. A file naming any other type is refused unloaded.
_SKOPS_TRUSTED = (
    "sk_mnist.preprocessing.Deskewer",
    "sk_mnist.preprocessing.GlobalStandardizer",
    "sk_mnist.preprocessing.PixelScaler",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)


def _skops():
    return require("skops.io", "cli", "the .skops model files")


def save_model(model, path):
    """Save ``model`` in the format its path's suffix names.

    Parameters
    ----------
    model : estimator
        Any fitted estimator that the chosen format can hold.
    path : str or path-like
        ``.skm`` (:func:`save`), ``.skops`` (skops.io) or, with any other
        suffix, a joblib pickle. The file is written atomically.
    """
    suffix = Path(path).suffix
    if suffix == SAFE_SUFFIX:
        save(model, path)
    elif suffix == SKOPS_SUFFIX:
        skops_io = _skops()
        atomic_write(path, lambda fh: skops_io.dump(model, fh))
    else:
        atomic_write(path, lambda fh: joblib.dump(model, fh))


def load_model(path, *, trust_pickle=False):
    """Load a model saved by :func:`save_model`, in the format its suffix names.

    Parameters
    ----------
    path : str or path-like
        A ``.skm`` file, a ``.skops`` file or, with any other suffix, a pickle.
    trust_pickle : bool, default=False
        Whether to read a pickle at all: loading one runs any code it holds.

    Returns
    -------
    model : estimator
        The model saved.

    Raises
    ------
    ValueError
        If the file is a pickle and ``trust_pickle`` is False, if a ``.skops``
        file names a type outside skops' trusted types and the package's own
        (it is refused unloaded), or if a ``.skm`` file is invalid.
    """
    suffix = Path(path).suffix
    if suffix == SAFE_SUFFIX:
        return load(path)
    if suffix == SKOPS_SUFFIX:
        skops_io = _skops()
        untrusted = sorted(set(skops_io.get_untrusted_types(file=path)) - set(_SKOPS_TRUSTED))
        if untrusted:
            raise ValueError(f"it holds types that sk-mnist does not load: {', '.join(untrusted)}")
        return skops_io.load(path, trusted=list(_SKOPS_TRUSTED))
    if not trust_pickle:
        raise ValueError(
            f"it is read as a pickle (its suffix is not {SAFE_SUFFIX} or {SKOPS_SUFFIX}), and loading a "
            "pickle runs any code it holds; pass --trust-pickle only if you trust its source"
        )
    return joblib.load(path)
