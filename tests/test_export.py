"""ONNX export (to_onnx) and inference with ONNX Runtime (ONNXClassifier)."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_mnist import MNISTCNNClassifier, __version__
from sk_mnist.export import ONNXClassifier, to_onnx
from sk_mnist.preprocessing import Deskewer, GlobalStandardizer, PixelScaler

DIGIT_NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def cnn(small_mnist):
    X, y, _, _ = small_mnist
    return MNISTCNNClassifier(max_epochs=2, random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def cnn_onnx(cnn, tmp_path_factory):
    return to_onnx(cnn, tmp_path_factory.mktemp("onnx") / "cnn.onnx")


@pytest.fixture(scope="module")
def pipeline(small_mnist):
    """Every exportable transformer, string labels, and feature names."""
    X, y, _, _ = small_mnist
    steps = [Deskewer(), PixelScaler(), "passthrough", GlobalStandardizer()]
    cnn = MNISTCNNClassifier(max_epochs=1, random_state=0)  # parity needs no accuracy
    return make_pipeline(*steps, cnn).fit(as_frame(X[:600]), DIGIT_NAMES[y[:600]])


def as_frame(X):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=[f"pixel_{i}" for i in range(X.shape[1])])


@pytest.fixture(scope="module")
def pipeline_onnx(pipeline, tmp_path_factory):
    return to_onnx(pipeline, tmp_path_factory.mktemp("onnx") / "pipeline.onnx", opset=20)


def test_probabilities_and_predictions_match_the_torch_model(cnn, cnn_onnx, small_mnist):
    _, _, X_test, y_test = small_mnist
    onnx_clf = ONNXClassifier(cnn_onnx).fit()
    proba = onnx_clf.predict_proba(X_test)
    assert proba.dtype == np.float64 and proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba, cnn.predict_proba(X_test), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx_clf.predict(X_test), cnn.predict(X_test))
    assert onnx_clf.score(X_test, y_test) == cnn.score(X_test, y_test)
    np.testing.assert_array_equal(onnx_clf.classes_, cnn.classes_)
    assert onnx_clf.n_features_in_ == 784 and onnx_clf.image_shape_ == (1, 28, 28)


def test_default_opset_is_the_documented_one(cnn_onnx):
    # to_onnx's docstring: "None writes opset 18".
    model = onnx.load(cnn_onnx)
    assert {entry.domain: entry.version for entry in model.opset_import}[""] == 18


def test_graph_takes_float32_rows_of_any_batch_size(cnn_onnx, small_mnist):
    _, _, X_test, _ = small_mnist
    session = ONNXClassifier(cnn_onnx).fit().session_
    (pixels,), (probabilities,) = session.get_inputs(), session.get_outputs()
    assert pixels.type == "tensor(float)" and isinstance(pixels.shape[0], str) and pixels.shape[1] == 784
    assert probabilities.type == "tensor(float)" and probabilities.shape[1] == 10
    for n in (1, 7, 300):
        (proba,) = session.run(None, {pixels.name: X_test[:n].astype(np.float32)})
        assert proba.shape == (n, 10)
        np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)


def test_every_input_form_gives_the_same_predictions(cnn_onnx, small_mnist):
    _, _, X_test, _ = small_mnist
    onnx_clf = ONNXClassifier(cnn_onnx).fit()
    expected = onnx_clf.predict_proba(X_test)
    for form in (
        X_test.astype(np.float64),
        X_test.reshape(-1, 28, 28),
        X_test.reshape(-1, 1, 28, 28),
        X_test.tolist(),
    ):
        np.testing.assert_array_equal(onnx_clf.predict_proba(form), expected)


def test_pipeline_with_string_labels_and_feature_names(pipeline, pipeline_onnx, small_mnist):
    _, _, X_test, _ = small_mnist
    X_test = as_frame(X_test)
    onnx_clf = ONNXClassifier(pipeline_onnx).fit()
    proba = onnx_clf.predict_proba(X_test)
    np.testing.assert_allclose(proba, pipeline.predict_proba(X_test), rtol=0, atol=1e-4)
    np.testing.assert_array_equal(onnx_clf.predict(X_test), pipeline.predict(X_test))
    np.testing.assert_array_equal(onnx_clf.classes_, pipeline.classes_)
    assert onnx_clf.classes_.dtype == pipeline.classes_.dtype
    np.testing.assert_array_equal(onnx_clf.feature_names_in_, pipeline.feature_names_in_)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        onnx_clf.predict(X_test.to_numpy())
    model = onnx.load(pipeline_onnx)
    assert {entry.domain: entry.version for entry in model.opset_import}[""] == 20
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata["sk_mnist.version"] == __version__
    assert json.loads(metadata["sk_mnist.classes"]) == sorted(DIGIT_NAMES)


def test_images_without_ink_pass_the_deskewing_as_in_numpy(pipeline, pipeline_onnx):
    # The numpy Deskewer leaves such images where they are; the graph must
    # too, rather than divide by their zero ink.
    blank = as_frame(np.vstack([np.zeros(784), np.full(784, 7.0)]))
    onnx_clf = ONNXClassifier(pipeline_onnx).fit()
    np.testing.assert_allclose(
        onnx_clf.predict_proba(blank), pipeline.predict_proba(blank), rtol=0, atol=1e-4
    )


def test_int8_is_smaller_and_nearly_as_accurate(cnn, cnn_onnx, small_mnist, tmp_path):
    X, _, X_test, y_test = small_mnist
    modes = [module.training for module in cnn.module_.modules()]
    weights = {name: tensor.clone() for name, tensor in cnn.module_.state_dict().items()}
    path = to_onnx(cnn, tmp_path / "int8.onnx", quantize="int8", calibration_data=X.reshape(-1, 28, 28))
    # the export works on a copy of the network: the estimator's is untouched
    assert [module.training for module in cnn.module_.modules()] == modes
    assert all(tensor.equal(weights[name]) for name, tensor in cnn.module_.state_dict().items())
    # Each convolution and linear weight goes from 4 bytes to 1: nearly all of
    # those 3 bytes a weight must be saved (biases, batch norms and scales stay float).
    n_weights = sum(
        layer.weight.numel()
        for layer in cnn.module_.modules()
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear))
    )
    assert cnn_onnx.stat().st_size - path.stat().st_size > 0.9 * 3 * n_weights
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Softmax"} <= ops
    int8 = ONNXClassifier(path).fit()
    proba = int8.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)  # the softmax stays float
    assert int8.score(X_test, y_test) >= cnn.score(X_test, y_test) - 0.02
    assert np.mean(int8.predict(X_test) == cnn.predict(X_test)) >= 0.97


def test_int8_needs_calibration_data(cnn, tmp_path):
    with pytest.raises(ValueError, match="calibration_data"):
        to_onnx(cnn, tmp_path / "int8.onnx", quantize="int8")


def test_what_cannot_be_exported_is_refused(cnn, small_mnist, tmp_path):
    X, _, _, _ = small_mnist
    with pytest.raises(NotFittedError):
        to_onnx(MNISTCNNClassifier(), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="got LogisticRegression"):
        to_onnx(LogisticRegression(), tmp_path / "m.onnx")
    pipe = Pipeline([("scale", StandardScaler().fit(X)), ("cnn", cnn)])
    with pytest.raises(NotImplementedError, match="'scale' \\(StandardScaler\\)"):
        to_onnx(pipe, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="quantize"):
        to_onnx(cnn, tmp_path / "m.onnx", quantize="int4")


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda X: X[:, :100], "784 features"),
        (lambda X: np.where(np.arange(784) == 3, np.nan, X.astype(float)), "NaN"),
        (lambda X: np.where(np.arange(784) == 3, np.inf, X.astype(float)), "infinity"),
        (lambda X: X.reshape(-1, 14, 56), "shape"),
        (lambda X: X.reshape(len(X), 1, 1, 28, 28), "5-D"),
        (lambda X: X[0], "2D array"),
    ],
)
def test_bad_input_is_a_clear_value_error(cnn_onnx, small_mnist, make_bad, message):
    _, _, X_test, _ = small_mnist
    onnx_clf = ONNXClassifier(cnn_onnx).fit()
    with pytest.raises(ValueError, match=message):
        onnx_clf.predict(make_bad(X_test[:5]))


def test_files_that_are_not_exported_models_are_refused(cnn_onnx, tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(cnn_onnx.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt.onnx is not a valid ONNX model"):
        ONNXClassifier(corrupt).fit()
    foreign = tmp_path / "foreign.onnx"
    model = onnx.load(cnn_onnx)
    del model.metadata_props[:]
    onnx.save(model, foreign)
    with pytest.raises(ValueError, match="foreign.onnx is an ONNX model, but not one written by"):
        ONNXClassifier(foreign).fit()
    with pytest.raises(FileNotFoundError):
        ONNXClassifier(tmp_path / "missing.onnx").fit()
    with pytest.raises(ValueError, match="path"):
        ONNXClassifier().fit()
    with pytest.raises(NotFittedError):
        ONNXClassifier(cnn_onnx).predict(np.zeros((1, 784)))


def test_a_missing_dependency_names_the_extra(cnn_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes importing it fail
    expected = r'onnxruntime is needed for ONNX .* pip install "sk_mnist\[export\]"'
    with pytest.raises(ImportError, match=expected):
        ONNXClassifier(cnn_onnx).fit()


def test_pickle_carries_the_model_and_clone_the_path(cnn_onnx, small_mnist, tmp_path):
    _, _, X_test, _ = small_mnist
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(cnn_onnx.read_bytes())
    onnx_clf = ONNXClassifier(copy).fit(X_test, np.zeros(len(X_test)))  # X and y are ignored
    copy.unlink()
    restored = pickle.loads(pickle.dumps(onnx_clf))
    np.testing.assert_array_equal(restored.predict_proba(X_test), onnx_clf.predict_proba(X_test))
    assert clone(onnx_clf).get_params() == {"path": copy}


def test_inference_does_not_import_torch(cnn, cnn_onnx, small_mnist, tmp_path):
    _, _, X_test, _ = small_mnist
    np.save(tmp_path / "X.npy", X_test)
    script = (
        "import sys, numpy as np\n"
        "from sk_mnist.export import ONNXClassifier\n"
        f"clf = ONNXClassifier({str(cnn_onnx)!r}).fit()\n"
        f"print(clf.predict(np.load({str(tmp_path / 'X.npy')!r})).tolist())\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('torch', 'skorch')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    predictions, imported = out.splitlines()
    assert predictions == str(cnn.predict(X_test).tolist())
    assert imported == "[]"
