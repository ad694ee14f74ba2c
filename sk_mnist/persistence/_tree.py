"""The model file's tree: estimators as JSON nodes, values as tagged JSON.

Each node names its class from an allow-list (the per-class descriptions in
``_SPECS``), its constructor parameters and its fitted state. Values JSON has
no type for are tagged (see :mod:`sk_mnist.persistence`); tensors are
collected apart, for the container's ``weights.safetensors``. A classifier
hands out and takes back its network's state itself
(``_get_network_state``/``_set_network_state``): this module only encodes and
decodes.
"""

import json
import re
from inspect import signature
from pathlib import Path, PurePath

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.ensemble import VotingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch
from sklearn.utils._param_validation import validate_parameter_constraints
from skorch.history import History

from .._classifier import MNISTCNNClassifier
from .._training import resolve_device
from ..distill import DistilledCNNClassifier
from ..modules import ARCHITECTURES
from ..preprocessing import Deskewer, GlobalStandardizer, PixelScaler
from ._container import check_keys

# Numeric arrays up to this many values are written in the JSON, readable;
# larger ones (a rehearsal buffer) as tensors in weights.safetensors.
_JSON_ARRAY_MAX = 1024
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


def _restore_classifier(net, reader, node, where):
    """Give a classifier back its network's tensors and its optimizer's state."""
    tensors = reader.tensors_for(node, where)
    optimizer = node.get("optimizer")
    check_keys(optimizer, ("param_groups", "state"), f"{where}.optimizer")
    entries = optimizer["state"]
    if not (
        isinstance(entries, list)
        and all(isinstance(e, list) and len(e) == 2 and type(e[0]) is int for e in entries)
    ):
        raise ValueError(f"{where}.optimizer: state must be a list of [parameter index, state] pairs")
    optimizer_state = {
        "state": {index: reader.value(values, f"{where}.optimizer") for index, values in entries},
        "param_groups": reader.value(optimizer["param_groups"], f"{where}.optimizer"),
    }
    try:
        net._set_network_state(tensors, optimizer_state)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


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
_SPECS = {
    "sk_mnist.MNISTCNNClassifier": _Spec(
        MNISTCNNClassifier,
        state=_CLASSIFIER_STATE,
        required=_CLASSIFIER_REQUIRED,
        rebuilt=MNISTCNNClassifier._rebuilt_attributes,
        restore=_restore_classifier,
    ),
    # The student, and its fitted teacher as a nested estimator (which must be
    # one the format holds); a teacher given fitted is also a parameter, and
    # is then stored twice.
    "sk_mnist.DistilledCNNClassifier": _Spec(
        DistilledCNNClassifier,
        state=(*_CLASSIFIER_STATE, "teacher_"),
        required=(*_CLASSIFIER_REQUIRED, "teacher_"),
        rebuilt=MNISTCNNClassifier._rebuilt_attributes,
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


class Writer:
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
            tensors, optimizer = est._get_network_state()
            for key, tensor in tensors.items():
                self.tensors[f"{prefix}/{key}"] = _detached(tensor)
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


class Reader:
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
        check_keys(node, ("class", "params", "state"), where, optional=("weights", "optimizer"))
        spec = _SPECS.get(node["class"])
        if spec is None:
            raise ValueError(f"{where}: estimator class {node['class']!r} is not one a model file may hold")
        params = self._mapping(node["params"], f"{where}.params")
        _check_param_names(spec.cls, params, where)
        if issubclass(spec.cls, MNISTCNNClassifier) and "device" in params:
            params["device"] = self._device(params["device"], f"{where}.params.device")
        est = spec.cls(**params)
        validate_parameter_constraints(
            getattr(spec.cls, "_parameter_constraints", {}),
            est.get_params(deep=False),
            caller_name=spec.cls.__name__,
        )
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
            check_keys(content, ("dtype", "shape", "tensor"), where)
            key = content["tensor"]
            if not (isinstance(key, str) and key.startswith("arrays/")):
                raise ValueError(f"{where}: malformed array reference")
            array = self.blob(key, where).numpy()
            if array.dtype.str != content["dtype"] or list(array.shape) != content["shape"]:
                raise ValueError(f"{where}: the stored tensor does not have the declared dtype and shape")
            return array
        check_keys(content, ("dtype", "shape", "data"), where)
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


def check_device(device):
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
    prefixes = cls._routed_prefixes() if issubclass(cls, MNISTCNNClassifier) else set()
    for key in params:
        routed = re.fullmatch(r"([a-z_]+?)__\w+", key)
        if key not in names and not (routed and routed.group(1) in prefixes):
            raise ValueError(f"{where}: {cls.__name__} has no parameter {key!r}")
