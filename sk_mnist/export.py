"""Export fitted models to ONNX, and classify with ONNX Runtime.

:func:`to_onnx` turns a fitted :class:`~sk_mnist.MNISTCNNClassifier`, or a
:class:`~sklearn.pipeline.Pipeline` of this package's transformers ending in
one, into a single ONNX graph from raw pixel rows to class probabilities,
optionally quantized to INT8. :class:`ONNXClassifier` is a scikit-learn
classifier over such a file.

The two halves have different dependencies: exporting needs torch, ``onnx``
and ``onnxscript`` (PyTorch's ONNX exporter); inference needs ``onnx``, to
check a file before it is loaded, and ``onnxruntime``. So torch is imported
inside :func:`to_onnx` alone, and a process that only predicts never loads
it. Install the optional dependencies with ``pip install "sk_mnist[export]"``.
"""

import json
import math
import os
import tempfile
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from . import __version__
from ._docs import DocLinkMixin
from ._images import canvas_shape, validate_images
from ._optional import require

__all__ = ["ONNXClassifier", "to_onnx"]

#: Names of the graph's input and output.
INPUT_NAME, OUTPUT_NAME = "pixels", "probabilities"

# The opset written when none is asked for, and the oldest one accepted: the
# oldest that PyTorch's torch.export-based exporter has implementations for.
# Below it, torch tries onnx's version converter, which fails even on Relu
# and then silently keeps opset 18.
DEFAULT_OPSET = 18

# Keys of the model's metadata_props.
_META_CLASSES = "sk_mnist.classes"
_META_CLASSES_DTYPE = "sk_mnist.classes_dtype"
_META_IMAGE_SHAPE = "sk_mnist.image_shape"
_META_FEATURE_NAMES = "sk_mnist.feature_names"
_META_VERSION = "sk_mnist.version"

# Operators quantized to INT8: the network's own. Pixel preprocessing and the
# softmax stay in float32, so probabilities keep their resolution.
_QUANTIZED_OPS = ["Conv", "Gemm", "MatMul", "Relu", "MaxPool", "Reshape", "Flatten"]

# Calibration images per onnxruntime run, and most images calibrated on: the
# calibrator holds every activation of every image until the end (about 85 kB
# an image for LeNet), and the ranges settle well before 2,000 images.
_CALIBRATION_BATCH = 256
_CALIBRATION_MAX_IMAGES = 2000

# Rows per onnxruntime run at prediction: large enough to keep the cores busy,
# small enough to bound the activations' memory (about 50 MB for LeNet).
_PREDICT_CHUNK = 1024


def _require(*modules):
    """Import the optional dependencies of ONNX export and inference."""
    return [require(name, "export", "ONNX export and inference") for name in modules]


@validate_params(
    {
        "estimator": [HasMethods(["fit", "predict_proba"])],
        "path": [str, os.PathLike],
        "quantize": [StrOptions({"int8"}), None],
        "calibration_data": ["array-like", None],
        "opset": [Interval(Integral, DEFAULT_OPSET, None, closed="left"), None],
    },
    prefer_skip_nested_validation=True,
)
def to_onnx(estimator, path, *, quantize=None, calibration_data=None, opset=None):
    """Export a fitted CNN, or a pipeline ending in one, to an ONNX file.

    The graph takes float32 pixel rows of shape ``(n_samples,
    n_features_in_)``, any number of samples, and returns float32 class
    probabilities of shape ``(n_samples, n_classes)``, columns in the order of
    ``classes_``. Everything between is inside it: the pipeline's
    :class:`~sk_mnist.preprocessing.PixelScaler`,
    :class:`~sk_mnist.preprocessing.GlobalStandardizer` and
    :class:`~sk_mnist.preprocessing.Deskewer` steps, then the classifier's
    ``module_`` in evaluation mode (input view, standardization, network; the
    training-only augmentation is left out), then a softmax. The class labels,
    the image shape and the package version are stored in the model's
    metadata, so that :class:`ONNXClassifier` returns the original labels,
    strings included.

    Read more in the :ref:`User Guide <onnx_export>`.

    Parameters
    ----------
    estimator : MNISTCNNClassifier or Pipeline
        A fitted :class:`~sk_mnist.MNISTCNNClassifier`, or a fitted
        :class:`~sklearn.pipeline.Pipeline` of this package's transformers
        (or ``"passthrough"``) ending in one. Its class labels must be
        JSON-serializable: int, float, bool or str.

    path : str or path-like
        The ``.onnx`` file to write; an existing file is replaced.

    quantize : {"int8"} or None, default=None
        ``"int8"`` writes a statically quantized model: weights and the
        network's activations in INT8 (QDQ format), with activation ranges
        measured on ``calibration_data``; pixel preprocessing and the softmax
        stay in float32. One byte per weight instead of four, and faster on
        CPUs, at a small cost in accuracy (figures in docs/benchmarks.md).
        Dynamic quantization is not offered: it gives the same size, and its
        dynamically quantized convolutions run slower than float32 on CPUs.

    calibration_data : array-like of shape (n_samples, n_features) or image array, default=None
        Training images, in any form the estimator accepts, on which the
        activation ranges are measured; required when ``quantize="int8"``.
        Of more than 2,000 images, a random sample of 2,000 (always the same
        for the same data) is used: the ranges settle well before that.

    opset : int, default=None
        ONNX opset to write, 18 or later. None writes opset 18.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        If the classifier averages its predictions over test-time views
        (``test_time_augmentation=True``), which the graph does not compute.
    NotImplementedError
        If the pipeline holds a step whose computation cannot be exported.

    See Also
    --------
    ONNXClassifier : Predict with the exported file.

    Notes
    -----
    Input dtype: the graph takes float32, which holds every 8-bit pixel value
    exactly; :class:`ONNXClassifier` converts uint8 and float64 input itself.
    Other runtimes must feed float32 rows.

    Float32 graphs give the predictions of the estimator and probabilities
    within about 1e-6 of its ``predict_proba`` (float64 pipelines compute
    their preprocessing in float64, the graph in float32).

    Examples
    --------
    >>> from tempfile import TemporaryDirectory
    >>> from sklearn.datasets import load_digits
    >>> from sk_mnist import MNISTCNNClassifier
    >>> from sk_mnist.export import ONNXClassifier, to_onnx
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MNISTCNNClassifier(max_epochs=2, random_state=0).fit(X[:500], y[:500])
    >>> with TemporaryDirectory() as tmp:
    ...     path = to_onnx(clf, tmp + "/digits.onnx", quantize="int8", calibration_data=X[:500])
    ...     onnx_clf = ONNXClassifier(path).fit()
    >>> path.name
    'digits.onnx'
    >>> onnx_clf.classes_
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> X_test, y_test = X[500:], y[500:]
    >>> round(clf.score(X_test, y_test), 2), round(onnx_clf.score(X_test, y_test), 2)  # doctest: +SKIP
    (0.8, 0.8)
    """
    if quantize == "int8" and calibration_data is None:
        raise ValueError(
            'quantize="int8" needs calibration_data: training images on which the '
            "INT8 activation ranges are measured (a couple of thousand are enough)."
        )
    # The estimator is checked before the optional modules, so that a wrong one
    # is named whether or not they are installed.
    classifier = _fitted_classifier(estimator)
    _require("onnx", "onnxscript", *(["onnxruntime"] if quantize else []))
    import onnx

    metadata = _metadata(estimator, classifier)  # before the slow part: labels must be JSON
    model = _export_float32(estimator, opset or DEFAULT_OPSET)
    if quantize == "int8":
        model = _quantize_int8(model, _calibration_rows(estimator, calibration_data))
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.doc_string = f"sk_mnist {__version__}: pixel rows to class probabilities."
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save_model(model, path)
    return path


def _fitted_classifier(estimator):
    """Return the CNN at the end of ``estimator``; check that all is fitted."""
    from ._classifier import MNISTCNNClassifier

    classifier = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    if not isinstance(classifier, MNISTCNNClassifier):
        raise TypeError(
            "to_onnx exports an MNISTCNNClassifier or a Pipeline ending in one; got "
            f"{type(classifier).__name__}."
        )
    check_is_fitted(estimator)
    if classifier.test_time_augmentation:
        raise ValueError(
            "to_onnx exports the network's predictions of each image alone, not their "
            "average over test-time views; export it with test_time_augmentation=False "
            "(clf.set_params(test_time_augmentation=False): training does not depend on it)."
        )
    return classifier


def _export_float32(estimator, opset):
    """Export the estimator's computation to an in-memory float32 ONNX model."""
    import torch

    graph = _torch_graph(estimator)
    example = torch.zeros(2, estimator.n_features_in_)
    with warnings.catch_warnings():
        # torch 2.13's exporter deep-copies its own deprecated LeafSpec objects;
        # the FutureWarning this raises is torch's business, not the caller's.
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        program = torch.onnx.export(
            graph,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=opset,
            verbose=False,
        )
    model = program.model_proto
    _drop_debug_records(model)
    return model


def _torch_graph(estimator):
    """Chain the pipeline's transformers, the CNN in eval mode and a softmax."""
    from collections import OrderedDict
    from copy import deepcopy

    from torch import nn

    steps = estimator.steps[:-1] if isinstance(estimator, Pipeline) else []
    preprocessing = OrderedDict()
    for name, step in steps:
        if step is None or step == "passthrough":
            continue
        if hasattr(step, "_torch_module"):  # the package's pixel transformers
            preprocessing[name] = step._torch_module()
        else:
            raise NotImplementedError(
                f"to_onnx cannot export pipeline step {name!r} ({type(step).__name__}): only "
                "PixelScaler, GlobalStandardizer, Deskewer and 'passthrough' have an ONNX form."
            )
    classifier = estimator[-1] if isinstance(estimator, Pipeline) else estimator
    # A copy: moving it to the CPU and to eval mode must not touch the
    # estimator's network. The augmentation layer is left out rather than
    # traced in eval mode, so that the graph cannot depend on that mode.
    network = deepcopy(classifier.module_).cpu()
    cnn = OrderedDict((name, layer) for name, layer in network.named_children() if name != "augment")
    # Nested, so that step names cannot clash with the network's layer names.
    return nn.Sequential(
        OrderedDict(
            preprocessing=nn.Sequential(preprocessing),
            cnn=nn.Sequential(cnn),
            softmax=nn.Softmax(dim=1),
        )
    ).eval()


def _drop_debug_records(model):
    """Remove the exporter's per-node debug records.

    They hold the exporting machine's file paths and source lines, and 1% of a
    float32 file's size (4% of an INT8 one).
    """
    graph = model.graph
    for item in (*graph.node, *graph.input, *graph.output, *graph.value_info, *graph.initializer):
        del item.metadata_props[:]


def _calibration_rows(estimator, X):
    """Validate calibration images as the estimator would; float32 pixel rows.

    More than ``_CALIBRATION_MAX_IMAGES`` are sampled down, reproducibly.
    """
    rows, _ = validate_images(estimator, X, reset=False)
    if len(rows) > _CALIBRATION_MAX_IMAGES:
        sample = np.random.default_rng(0).choice(len(rows), _CALIBRATION_MAX_IMAGES, replace=False)
        rows = rows[np.sort(sample)]
    return rows.astype(np.float32)


class _CalibrationBatches:
    """Feed calibration rows to onnxruntime's calibrator, batch by batch."""

    def __init__(self, rows):
        self._batches = iter(np.array_split(rows, max(1, len(rows) // _CALIBRATION_BATCH)))

    def get_next(self):
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def _quantize_int8(model, rows):
    """Quantize ``model`` statically (QDQ), activation ranges measured on ``rows``."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp, "int8.onnx")
        quantize_static(
            model,
            quantized,
            _CalibrationBatches(rows),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=_QUANTIZED_OPS,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        return onnx.load_model(quantized)


def _metadata(estimator, classifier):
    """What ONNXClassifier needs beyond the graph, as metadata_props entries."""
    entries = {
        _META_CLASSES: json.dumps(classifier.classes_.tolist()),
        _META_CLASSES_DTYPE: _narrowest_dtype(classifier.classes_).str,
        _META_IMAGE_SHAPE: json.dumps(list(classifier.image_shape_)),
        _META_VERSION: __version__,
    }
    if hasattr(estimator, "feature_names_in_"):
        entries[_META_FEATURE_NAMES] = json.dumps(estimator.feature_names_in_.tolist())
    return entries


def _narrowest_dtype(classes):
    """The dtype of ``classes``, strings no wider than the longest label.

    ONNXClassifier refuses a string dtype wider than the labels need, so that a
    file cannot make it allocate more than the labels it holds; labels from a
    wider ``y`` (``<U20`` holding ``"cat"``) are written at their own width.
    """
    return np.array(classes.tolist()).dtype if classes.dtype.kind == "U" else classes.dtype


# Loading a file in ONNXClassifier: each function checks one part of it and
# raises a ValueError naming the file, so that a file from an untrusted source
# is refused before it can make onnxruntime read other files or make numpy
# allocate what the file does not hold, and a model predict cannot run is
# refused at fit rather than at predict.


def _not_ours(path, problem):
    return ValueError(f"{path} is an ONNX model, but not one written by sk_mnist.export.to_onnx: {problem}.")


def _parsed_model(onnx, model_bytes, path):
    """The ModelProto in ``model_bytes``."""
    from google.protobuf.message import DecodeError  # protobuf comes with onnx

    try:
        return onnx.ModelProto.FromString(model_bytes)
    except DecodeError as exc:
        raise ValueError(f"{path} is not a valid ONNX model: {exc}") from exc


def _tensors(model):
    """Every TensorProto within the protobuf message ``model``, at any depth.

    A walk over all message fields rather than a list of the places tensors
    live (initializers, sparse initializers, node attributes, If/Loop/Scan
    bodies, functions, training graphs): it cannot miss one. Protobuf's parser
    limits the nesting depth, hence the recursion's.
    """
    from google.protobuf.message import Message
    from onnx import TensorProto

    def walk(message):
        if isinstance(message, TensorProto):
            yield message
            return
        for field, value in message.ListFields():
            if field.message_type is not None:
                for item in [value] if isinstance(value, Message) else value:  # a field or a repeated one
                    yield from walk(item)

    return walk(model)


def _refuse_external_data(model, path):
    """Refuse tensors whose data lie outside the file.

    onnxruntime resolves external data against the current directory when it
    loads bytes (and reads process memory for its special location
    ``*/_ORT_MEM_ADDR_/*``): such a tensor would turn a file such as ``./.env``
    into weights that predict_proba returns. to_onnx never writes them.
    """
    from onnx import TensorProto

    for tensor in _tensors(model):
        if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
            location = {entry.key: entry.value for entry in tensor.external_data}.get("location")
            raise ValueError(
                f"{path} stores tensor {tensor.name!r} outside the file (external data at "
                f"{location!r}); ONNXClassifier loads only self-contained models, as to_onnx writes them."
            )


def _metadata_json(metadata, key, path):
    """The JSON value of metadata entry ``key``."""
    if key not in metadata:
        raise _not_ours(path, f"its metadata has no {key!r} entry")
    try:
        return json.loads(metadata[key])
    except (ValueError, RecursionError) as exc:  # RecursionError: deeply nested brackets
        raise _bad_metadata(path, key, f"not JSON ({type(exc).__name__})") from exc


def _bad_metadata(path, key, problem):
    return ValueError(f"{path}: invalid metadata {key!r}: {problem}.")


def _classes(metadata, path):
    """The class labels, with their stored dtype, checked to hold exactly the stored labels."""
    labels = _metadata_json(metadata, _META_CLASSES, path)
    # bool is an int: True and False are labels to_onnx writes.
    if not (isinstance(labels, list) and labels and all(isinstance(v, (str, int, float)) for v in labels)):
        raise _bad_metadata(path, _META_CLASSES, "expected a non-empty list of strings and numbers")
    dtype = _classes_dtype(metadata, labels, path)
    try:
        classes = np.asarray(labels, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad_metadata(path, _META_CLASSES_DTYPE, f"{dtype} cannot hold the labels ({exc})") from exc
    # Conversion must not change a label: "seven" in <U2, 2.5 in int64, 300 in uint8.
    if classes.tolist() != labels:
        raise _bad_metadata(path, _META_CLASSES_DTYPE, f"{dtype} changes the labels")
    return classes


def _classes_dtype(metadata, labels, path):
    """The labels' dtype; one of strings no wider than the longest label.

    The width is checked before any array exists: ``"<U500000000"`` would
    otherwise allocate 2 GB for each label.
    """
    if _META_CLASSES_DTYPE not in metadata:
        raise _not_ours(path, f"its metadata has no {_META_CLASSES_DTYPE!r} entry")
    text = metadata[_META_CLASSES_DTYPE]
    try:
        dtype = np.dtype(text)
    except (TypeError, ValueError) as exc:
        raise _bad_metadata(path, _META_CLASSES_DTYPE, f"{text!r} is not a numpy dtype") from exc
    if dtype.kind not in "biufUO" or dtype.names is not None or dtype.subdtype is not None:
        raise _bad_metadata(path, _META_CLASSES_DTYPE, f"labels cannot have dtype {text!r}")
    if dtype.kind == "U":
        # numpy's narrowest string dtype holds one character: <U1 for [""].
        longest = max([1, *(len(v) for v in labels if isinstance(v, str))])
        if dtype.itemsize // 4 > longest:
            raise _bad_metadata(
                path,
                _META_CLASSES_DTYPE,
                f"{text!r} declares strings of {dtype.itemsize // 4} characters; the longest label has {longest}",
            )
    return dtype


def _session(ort, model_bytes, path):
    """An onnxruntime session on ``model_bytes``, read as ONNX (what was checked)."""
    options = ort.SessionOptions()
    # Bytes that look like onnxruntime's own ORT format would otherwise be
    # read as that, not as the ModelProto checked above.
    options.add_session_config_entry("session.load_model_format", "ONNX")
    try:
        return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's load errors share no public base class
        raise ValueError(f"{path} is not a valid ONNX model: {exc}") from exc


def _describe(nodes):
    return ", ".join(f"{node.name!r} of type {node.type} and shape {node.shape}" for node in nodes) or "none"


def _is_batch_then_width(shape):
    """Whether ``shape`` is (any number of rows, a fixed positive width)."""
    return (
        len(shape) == 2
        and not isinstance(shape[0], int)  # a named or unnamed dynamic dimension
        and isinstance(shape[1], int)
        and shape[1] > 0
    )


def _checked_input(session, path):
    """The number of features of the graph's one input, float32 pixel rows."""
    inputs = session.get_inputs()
    if not (
        len(inputs) == 1
        and inputs[0].name == INPUT_NAME
        and inputs[0].type == "tensor(float)"
        and _is_batch_then_width(inputs[0].shape)
    ):
        raise _not_ours(
            path,
            f"the graph must take one input {INPUT_NAME!r} of float32 pixel rows "
            f"(any number of rows, a fixed number of features); it takes {_describe(inputs)}",
        )
    return inputs[0].shape[1]


def _check_output(session, n_classes, path):
    """Check that the graph returns float32 probabilities, one column a class."""
    outputs = session.get_outputs()
    if not (
        len(outputs) == 1
        and outputs[0].name == OUTPUT_NAME
        and outputs[0].type == "tensor(float)"
        and _is_batch_then_width(outputs[0].shape)
        and outputs[0].shape[1] == n_classes
    ):
        raise _not_ours(
            path,
            f"the graph must return one output {OUTPUT_NAME!r} of float32 probabilities, "
            f"one column for each of the {n_classes} classes in its metadata; it returns {_describe(outputs)}",
        )


def _image_shape(metadata, n_features, path):
    """``(channels, height, width)``: holding exactly the features, or their square canvas."""
    shape = _metadata_json(metadata, _META_IMAGE_SHAPE, path)
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(type(d) is int and d > 0 for d in shape)
        and (math.prod(shape) == n_features or tuple(shape) == canvas_shape(n_features))
    ):
        raise _bad_metadata(
            path,
            _META_IMAGE_SHAPE,
            f"expected the (channels, height, width) of {n_features} pixels, got {shape!r}",
        )
    return tuple(shape)


def _feature_names(metadata, n_features, path):
    """The feature names, or None when the file has none."""
    if _META_FEATURE_NAMES not in metadata:
        return None
    names = _metadata_json(metadata, _META_FEATURE_NAMES, path)
    if not (isinstance(names, list) and len(names) == n_features and all(isinstance(n, str) for n in names)):
        raise _bad_metadata(path, _META_FEATURE_NAMES, f"expected a list of {n_features} strings")
    return np.asarray(names, dtype=object)


class ONNXClassifier(DocLinkMixin, ClassifierMixin, BaseEstimator):
    """A classifier that predicts with an ONNX model written by :func:`to_onnx`.

    It wraps an already trained model, scikit-learn's "prefit" pattern:
    :meth:`fit` learns nothing, it checks the file, loads it into an ONNX
    Runtime session (CPU) and reads the class labels and input shape from the
    file's metadata. Predictions then need only numpy, scikit-learn and
    ``onnxruntime`` (``onnx`` too for checking the file); torch is not imported.

    Read more in the :ref:`User Guide <onnx_export>`.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file. Required; ``None``, the default, only lets the
        classifier be created empty, as scikit-learn's tools do.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels of the exported estimator, with their dtype.

    n_features_in_ : int
        Number of features (pixels) the model takes.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features of the exported estimator. Defined only when it
        was fitted on data with feature names that are all strings.

    image_shape_ : tuple of int
        ``(channels, height, width)`` of the images the input rows hold.

    session_ : onnxruntime.InferenceSession
        The loaded model.

    See Also
    --------
    to_onnx : Write the file.
    MNISTCNNClassifier : The estimator exported.

    Notes
    -----
    Input is validated as :class:`~sk_mnist.MNISTCNNClassifier` validates
    it: rows ``(n, n_features)`` or image arrays, any numeric dtype, numpy or
    pandas; NaN, infinity and a wrong number of features are a ``ValueError``.
    Pixels go to the graph as float32 (exact for uint8 pixels), in chunks of
    at most 1,024 rows. Probabilities are computed in float32 and returned as
    float64, as the torch model returns them.

    A pickled ``ONNXClassifier`` carries the model itself, not the path.

    A model file may come from an untrusted source: :meth:`fit` refuses
    anything but a self-contained model of the form :func:`to_onnx` writes
    before predicting can go wrong, each refusal a ``ValueError`` naming the
    file. Refused are tensors stored outside the file, anywhere in the model
    (onnxruntime would read them from the current directory: a file could
    turn ``./.env`` into weights), missing or inconsistent metadata (labels
    that their dtype would change, a string dtype wider than the longest
    label, an image shape of another number of pixels), a graph input other
    than one ``"pixels"`` of float32 rows of a fixed width, and a graph
    output other than one ``"probabilities"`` of float32 rows, one column
    for each class.

    Examples
    --------
    >>> from tempfile import TemporaryDirectory
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sk_mnist import MNISTCNNClassifier
    >>> from sk_mnist.export import ONNXClassifier, to_onnx
    >>> X, y = load_digits(return_X_y=True)
    >>> names = np.array(["zero", "one", "two", "three", "four", "five", "six",
    ...                   "seven", "eight", "nine"])
    >>> clf = MNISTCNNClassifier(max_epochs=2, random_state=0).fit(X[:500], names[y[:500]])
    >>> with TemporaryDirectory() as tmp:
    ...     onnx_clf = ONNXClassifier(to_onnx(clf, tmp + "/digits.onnx")).fit()
    >>> onnx_clf.classes_[:3]
    array(['eight', 'five', 'four'], dtype='<U5')
    >>> bool((onnx_clf.predict(X) == clf.predict(X)).all())
    True
    >>> onnx_clf.predict_proba(X[:2]).shape
    (2, 10)
    """

    _parameter_constraints: dict = {"path": [str, os.PathLike]}

    def __init__(self, path=None):
        self.path = path

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Load the model; nothing is learnt.

        Parameters
        ----------
        X : None
            Ignored; the model is already trained.
        y : None
            Ignored.

        Returns
        -------
        self : ONNXClassifier
            The classifier, ready to predict.

        Raises
        ------
        ValueError
            If the file is not a self-contained ONNX model of the form
            :func:`to_onnx` writes (see the Notes of the class).
        """
        self._load(Path(self.path).read_bytes())
        return self

    def _load(self, model_bytes):
        """Check ``model_bytes`` fully, open a session on them, set the fitted attributes."""
        onnx, ort = _require("onnx", "onnxruntime")
        model = _parsed_model(onnx, model_bytes, self.path)
        _refuse_external_data(model, self.path)
        metadata = {prop.key: prop.value for prop in model.metadata_props}
        classes = _classes(metadata, self.path)
        session = _session(ort, model_bytes, self.path)
        n_features = _checked_input(session, self.path)
        _check_output(session, len(classes), self.path)
        image_shape = _image_shape(metadata, n_features, self.path)
        feature_names = _feature_names(metadata, n_features, self.path)
        # Set only once everything is checked: a refused file sets nothing.
        self.classes_, self.n_features_in_, self.image_shape_ = classes, n_features, image_shape
        if feature_names is not None:
            self.feature_names_in_ = feature_names
        else:  # a refit on a file without names must not keep the previous file's
            vars(self).pop("feature_names_in_", None)
        self.session_ = session
        self._model_bytes = model_bytes

    def predict_proba(self, X):
        """Probability of each class for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Images, in any form :class:`~sk_mnist.MNISTCNNClassifier` accepts.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        check_is_fitted(self)
        X, _ = validate_images(self, X, reset=False)
        X = X.astype(np.float32, copy=False)
        chunks = [
            self.session_.run(None, {INPUT_NAME: X[start : start + _PREDICT_CHUNK]})[0]
            for start in range(0, len(X), _PREDICT_CHUNK)
        ]
        return np.concatenate(chunks).astype(np.float64)

    def predict(self, X):
        """Predict the class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Images, in any form :class:`~sk_mnist.MNISTCNNClassifier` accepts.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``.
        """
        proba = self.predict_proba(X)  # first: it checks that the classifier is fitted
        return self.classes_[proba.argmax(axis=1)]

    def __getstate__(self):
        # An InferenceSession cannot be pickled; the model's bytes can, and
        # rebuild it on unpickling.
        state = dict(super().__getstate__())  # a copy: the instance keeps its session
        state.pop("session_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_model_bytes" in state:
            self._load(state["_model_bytes"])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # scikit-learn's common checks fit on their own data and expect the
        # classes of that data; a wrapper of a trained model cannot pass them,
        # and scikit-learn leaves its own FrozenEstimator out of them too.
        # tests/test_export.py tests this classifier's behaviour instead.
        tags._skip_test = True
        return tags
