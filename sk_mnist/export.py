"""Export fitted models to ONNX, and classify with ONNX Runtime.

:func:`to_onnx` turns a fitted :class:`~sk_mnist.MNISTCNNClassifier`, or a
:class:`~sklearn.pipeline.Pipeline` of this package's transformers ending in
one, into a single ONNX graph from raw pixel rows to class probabilities,
optionally quantized to INT8. :class:`ONNXClassifier` is a scikit-learn
classifier over such a file.

The two halves have different dependencies: exporting needs torch, ``onnx``
and ``onnxscript`` (PyTorch's ONNX exporter); inference needs only
``onnxruntime``. So torch is imported inside :func:`to_onnx` alone, and a
process that only predicts never loads it. Install the optional dependencies
with ``pip install "sk_mnist[export]"``.
"""

import json
import os
import tempfile
import warnings
from numbers import Integral
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import check_is_fitted

from . import __version__
from ._images import validate_images
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
        stay in float32. About 4 times smaller than float32 and faster on
        CPUs, at a cost in accuracy of hundredths of a point on MNIST.
        Dynamic quantization is not offered: it gives the same size, and its
        dynamically quantized convolutions run several times slower than
        float32 on CPUs.

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
    _require("onnx", "onnxscript", *(["onnxruntime"] if quantize else []))
    import onnx

    classifier = _fitted_classifier(estimator)
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

    from .modules import Standardize
    from .preprocessing import Deskewer, GlobalStandardizer, PixelScaler

    steps = estimator.steps[:-1] if isinstance(estimator, Pipeline) else []
    preprocessing = OrderedDict()
    for name, step in steps:
        if step is None or step == "passthrough":
            continue
        if isinstance(step, PixelScaler):
            preprocessing[name] = Standardize(0.0, step.max_value)
        elif isinstance(step, GlobalStandardizer):
            preprocessing[name] = Standardize(step.mean_, step.scale_)
        elif isinstance(step, Deskewer):
            preprocessing[name] = _deskew_layer(step.n_features_in_)
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


def _deskew_layer(n_features):
    """A torch module computing what :class:`~sk_mnist.preprocessing.Deskewer` does.

    The same moments as the numpy implementation, and the same bilinear
    sampling with zeros outside the image, done by ``grid_sample``. Defined
    here, not at module level, because this module must import without torch.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from ._images import canvas_shape

    _, height, width = canvas_shape(n_features)

    class Deskew(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("rows", torch.arange(height, dtype=torch.float32)[None, :, None])
            self.register_buffer("cols", torch.arange(width, dtype=torch.float32)[None, None, :])

        def forward(self, x):
            images = F.pad(x, (0, height * width - n_features)).reshape(-1, height, width)
            rows, cols = self.rows, self.cols
            background = images.amin(dim=(1, 2), keepdim=True)
            ink = images - background
            total = ink.sum(dim=(1, 2), keepdim=True)
            has_ink = total > 0
            weights = torch.where(has_ink, ink / total, 0.0)
            row_mass = (weights * rows).sum(dim=(1, 2), keepdim=True)
            col_mass = (weights * cols).sum(dim=(1, 2), keepdim=True)
            row_var = (weights * (rows - row_mass) ** 2).sum(dim=(1, 2), keepdim=True)
            covariance = (weights * (rows - row_mass) * (cols - col_mass)).sum(dim=(1, 2), keepdim=True)
            skew = torch.where(row_var > 0, covariance / row_var, 0.0)
            centre_row, centre_col = (height - 1) / 2, (width - 1) / 2
            src_rows = torch.where(has_ink, rows - centre_row + row_mass, rows).expand_as(images)
            src_cols = torch.where(has_ink, skew * (rows - centre_row) + cols - centre_col + col_mass, cols)
            # grid_sample's coordinates, with align_corners=False: pixel i of n
            # has its centre at (2i + 1) / n - 1.
            grid = torch.stack([(2 * src_cols + 1) / width - 1, (2 * src_rows + 1) / height - 1], dim=-1)
            sampled = F.grid_sample(
                ink[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )
            return (sampled[:, 0] + background).reshape(-1, height * width)[:, :n_features]

    return Deskew()


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
        _META_CLASSES_DTYPE: classifier.classes_.dtype.str,
        _META_IMAGE_SHAPE: json.dumps(list(classifier.image_shape_)),
        _META_VERSION: __version__,
    }
    if hasattr(estimator, "feature_names_in_"):
        entries[_META_FEATURE_NAMES] = json.dumps(estimator.feature_names_in_.tolist())
    return entries


class ONNXClassifier(ClassifierMixin, BaseEstimator):
    """A classifier that predicts with an ONNX model written by :func:`to_onnx`.

    It wraps an already trained model, scikit-learn's "prefit" pattern:
    :meth:`fit` learns nothing, it loads the file into an ONNX Runtime
    session (CPU) and reads the class labels and input shape from the file's
    metadata. Predictions then need only numpy, scikit-learn and
    ``onnxruntime``; torch is not imported.

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
        """
        self._validate_params()
        self._load(Path(self.path).read_bytes())
        return self

    def _load(self, model_bytes):
        """Open a session on ``model_bytes`` and read the fitted attributes from it."""
        (ort,) = _require("onnxruntime")
        try:
            session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's load errors share no public base class
            raise ValueError(f"{self.path} is not a valid ONNX model: {exc}") from exc
        metadata = session.get_modelmeta().custom_metadata_map
        if _META_CLASSES not in metadata:
            raise ValueError(
                f"{self.path} is an ONNX model, but not one written by sk_mnist.export.to_onnx: "
                "its metadata has no class labels."
            )
        self.classes_ = np.asarray(json.loads(metadata[_META_CLASSES]), dtype=metadata[_META_CLASSES_DTYPE])
        self.n_features_in_ = session.get_inputs()[0].shape[1]
        self.image_shape_ = tuple(json.loads(metadata[_META_IMAGE_SHAPE]))
        if _META_FEATURE_NAMES in metadata:
            self.feature_names_in_ = np.asarray(json.loads(metadata[_META_FEATURE_NAMES]), dtype=object)
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
