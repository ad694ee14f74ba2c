"""Hostile .onnx files given to ONNXClassifier.fit: refused at fit, by name.

The models are built with onnx's helper API: a tiny graph of the form to_onnx
writes (float32 pixel rows in, one float32 probability column a class out,
the same metadata), then changed in one place.
"""

import json
import tracemalloc

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from sk_mnist import MNISTCNNClassifier
from sk_mnist.export import ONNXClassifier, to_onnx

N_FEATURES, N_CLASSES = 4, 3  # four pixels: a 2x2 image
OPSET = [helper.make_opsetid("", 18)]
METADATA = {
    "sk_mnist.classes": "[0, 1, 2]",
    "sk_mnist.classes_dtype": "<i8",
    "sk_mnist.image_shape": "[1, 2, 2]",
    "sk_mnist.version": "0.1.0",
}
DECOY = b"API_KEY=decoy-5f3a9c0e71b2"  # what an attacker would like ./.env to give away


def rows(name="pixels", elem_type=TensorProto.FLOAT, shape=("batch", N_FEATURES)):
    return helper.make_tensor_value_info(name, elem_type, list(shape))


def softmax_graph(inputs=None, outputs=None, n_classes=N_CLASSES):
    """pixels (batch, 4) -> MatMul -> Softmax -> probabilities (batch, n_classes)."""
    weights = numpy_helper.from_array(np.ones((N_FEATURES, n_classes), np.float32), "W")
    nodes = [
        helper.make_node("MatMul", ["pixels", "W"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    inputs = inputs or [rows()]
    outputs = outputs or [rows("probabilities", shape=("batch", n_classes))]
    return helper.make_graph(nodes, "softmax", inputs, outputs, initializer=[weights])


def save(model, path, metadata=METADATA):
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    path.write_bytes(model.SerializeToString())
    return path


def with_metadata(**changes):
    """METADATA with entries replaced (a value) or removed (None); keys use _ for . and -."""
    metadata = dict(METADATA)
    for name, value in changes.items():
        key = "sk_mnist." + name
        if value is None:
            del metadata[key]
        else:
            metadata[key] = value
    return metadata


def test_the_tiny_model_loads_and_predicts(tmp_path):
    clf = ONNXClassifier(
        save(helper.make_model(softmax_graph(), opset_imports=OPSET), tmp_path / "ok.onnx")
    ).fit()
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.n_features_in_ == 4 and clf.image_shape_ == (1, 2, 2)
    np.testing.assert_allclose(clf.predict_proba(np.zeros((2, 4))), np.full((2, 3), 1 / 3), rtol=1e-6)


# -- item 1: external data ---------------------------------------------------------


def external(name, location=".env"):
    """A uint8 tensor whose bytes onnxruntime would read from ``location``."""
    tensor = TensorProto(name=name, data_type=TensorProto.UINT8, dims=[len(DECOY)])
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def leaking_graph(source_nodes, initializers=(), sparse_initializers=()):
    """probabilities = 0 * sum(pixels) + float(W): predict_proba would return W's bytes.

    ``source_nodes`` (or ``initializers``) provide the uint8 tensor "W".
    """
    zero = numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [
        *source_nodes,
        helper.make_node("ReduceSum", ["pixels", "axes"], ["total"], keepdims=1),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Cast", ["W"], ["W_float"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["nothing", "W_float"], ["probabilities"]),
    ]
    return helper.make_graph(
        nodes,
        "leak",
        [rows()],
        [rows("probabilities", shape=("batch", len(DECOY)))],
        initializer=[zero, axes, *initializers],
        sparse_initializer=list(sparse_initializers),
    )


def if_true(branch_nodes, branch_initializers=()):
    """An If node that always takes a branch computing the uint8 "W"."""
    then_branch = helper.make_graph(
        branch_nodes,
        "then",
        [],
        [helper.make_tensor_value_info("W_then", TensorProto.UINT8, [len(DECOY)])],
        initializer=list(branch_initializers),
    )
    zeros = numpy_helper.from_array(np.zeros(len(DECOY), np.uint8))
    else_branch = helper.make_graph(
        [helper.make_node("Constant", [], ["W_else"], value=zeros)],
        "else",
        [],
        [helper.make_tensor_value_info("W_else", TensorProto.UINT8, [len(DECOY)])],
    )
    return [
        helper.make_node("Constant", [], ["true"], value=numpy_helper.from_array(np.array(True))),
        helper.make_node("If", ["true"], ["W"], then_branch=then_branch, else_branch=else_branch),
    ]


def sparse_external():
    indices = numpy_helper.from_array(np.arange(len(DECOY), dtype=np.int64), "W_indices")
    return helper.make_sparse_tensor(external("W"), indices, [len(DECOY)])


LEAKS = {
    "initializer": lambda: leaking_graph([], initializers=[external("W")]),
    "constant-attribute": lambda: leaking_graph(
        [helper.make_node("Constant", [], ["W"], value=external("c"))]
    ),
    "if-branch-initializer": lambda: leaking_graph(
        if_true([helper.make_node("Identity", ["W_in"], ["W_then"])], [external("W_in")])
    ),
    "if-branch-constant-attribute": lambda: leaking_graph(
        if_true([helper.make_node("Constant", [], ["W_then"], value=external("c"))])
    ),
    "sparse-initializer": lambda: leaking_graph([], sparse_initializers=[sparse_external()]),
}


@pytest.fixture
def decoy_cwd(tmp_path, monkeypatch):
    """A working directory holding a secret, as ./.env."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(DECOY)
    return tmp_path


def leak_metadata():
    return with_metadata(classes=json.dumps(list(range(len(DECOY)))))


def test_the_leaking_graph_does_read_the_working_directory(decoy_cwd):
    # What the refusal prevents: onnxruntime, given these bytes, returns ./.env.
    model = helper.make_model(LEAKS["initializer"](), opset_imports=OPSET)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (proba,) = session.run(None, {"pixels": np.zeros((1, N_FEATURES), np.float32)})
    assert bytes(proba.astype(np.uint8)[0]) == DECOY


@pytest.mark.parametrize("where", LEAKS)
def test_external_data_is_refused_everywhere(where, decoy_cwd, capfd):
    path = save(
        helper.make_model(LEAKS[where](), opset_imports=OPSET), decoy_cwd / "hostile.onnx", leak_metadata()
    )
    clf = ONNXClassifier(path)
    with pytest.raises(
        ValueError, match=r"hostile.onnx stores tensor '\w+' outside the file .*'\.env'"
    ) as info:
        clf.fit()
    with pytest.raises(NotFittedError):
        clf.predict_proba(np.zeros((1, N_FEATURES)))
    out, err = capfd.readouterr()
    for text in (str(info.value), out, err):
        assert DECOY.decode() not in text


def test_external_data_in_a_nested_function_body_is_refused(decoy_cwd):
    # A local function's nodes are a graph too, out of reach of a walk over subgraphs only.
    function = helper.make_function(
        "evil", "LeakW", [], ["W"], [helper.make_node("Constant", [], ["W"], value=external("c"))], OPSET
    )
    model = helper.make_model(
        leaking_graph([helper.make_node("LeakW", [], ["W"], domain="evil")]),
        opset_imports=[*OPSET, helper.make_opsetid("evil", 1)],
        functions=[function],
    )
    with pytest.raises(ValueError, match=r"hostile.onnx stores tensor 'c' outside the file"):
        ONNXClassifier(save(model, decoy_cwd / "hostile.onnx", leak_metadata())).fit()


# -- item 2: the labels' declared dtype ------------------------------------------------


def test_a_huge_declared_string_width_allocates_nothing(tmp_path):
    # 10 million characters are 40 MB a label; the labels need one character each.
    metadata = with_metadata(classes='["a", "b", "c"]', classes_dtype="<U10000000")
    path = save(helper.make_model(softmax_graph(), opset_imports=OPSET), tmp_path / "wide.onnx", metadata)
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError,
            match="wide.onnx: invalid metadata 'sk_mnist.classes_dtype': '<U10000000' "
            "declares strings of 10000000 characters; the longest label has 1",
        ):
            ONNXClassifier(path).fit()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


@pytest.mark.parametrize(
    "classes, dtype, message",
    [
        ('["one", "three"]', "<U6", "'<U6' declares strings of 6 characters; the longest label has 5"),
        ('["one", "three"]', "<U2", "<U2 changes the labels"),  # would be "on", "th"
        ("[1, 2]", "<U1", "<U1 changes the labels"),  # would be "1", "2"
        ("[1.5, 2]", "<i8", "int64 changes the labels"),  # would be 1, 2
        ("[1, 300]", "|u1", "uint8 cannot hold the labels"),
        ('["a", "b"]', "<i8", "int64 cannot hold the labels"),
        ("[1, 2]", "not-a-dtype", "'not-a-dtype' is not a numpy dtype"),
        ("[1, 2]", "<M8[s]", "labels cannot have dtype '<M8[s]'"),
        ("[1, 2]", "|V8", "labels cannot have dtype '|V8'"),
        ("[1, 2]", "(2,)<i8", "labels cannot have dtype '(2,)<i8'"),
        ("[1, 2]", "<i4,<i4", "labels cannot have dtype '<i4,<i4'"),
    ],
)
def test_a_dtype_that_does_not_hold_the_labels_is_refused(tmp_path, classes, dtype, message):
    metadata = with_metadata(classes=classes, classes_dtype=dtype)
    model = helper.make_model(softmax_graph(n_classes=2), opset_imports=OPSET)
    path = save(model, tmp_path / "labels.onnx", metadata)
    with pytest.raises(ValueError) as info:
        ONNXClassifier(path).fit()
    assert str(info.value).startswith(f"{path}: invalid metadata 'sk_mnist.classes_dtype': ")
    assert message in str(info.value)


def test_to_onnx_writes_labels_at_their_own_width(tmp_path):
    # Labels of a wider y ("<U20") are written, and read back, as what they need.
    X, y = load_digits(return_X_y=True)
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"], dtype="<U20"
    )
    clf = MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X[:200], names[y[:200]])
    assert clf.classes_.dtype == "<U20"
    path = to_onnx(clf, tmp_path / "names.onnx")
    metadata = {prop.key: prop.value for prop in onnx.load(path).metadata_props}
    assert metadata["sk_mnist.classes_dtype"] == "<U5"  # "three", "seven", "eight"
    onnx_clf = ONNXClassifier(path).fit()
    assert onnx_clf.classes_.dtype == "<U5"
    np.testing.assert_array_equal(onnx_clf.predict(X[200:300]), clf.predict(X[200:300]))


# -- item 10: everything else fit checks -------------------------------------------------

NOT_OURS = "is an ONNX model, but not one written by sk_mnist.export.to_onnx: "

BAD_METADATA = {
    "no-classes": (with_metadata(classes=None), "its metadata has no 'sk_mnist.classes' entry"),
    "no-classes-dtype": (
        with_metadata(classes_dtype=None),
        "its metadata has no 'sk_mnist.classes_dtype' entry",
    ),
    "no-image-shape": (with_metadata(image_shape=None), "its metadata has no 'sk_mnist.image_shape' entry"),
    "classes-not-json": (with_metadata(classes="[0, 1,"), "invalid metadata 'sk_mnist.classes': not JSON"),
    "classes-deeply-nested": (
        with_metadata(classes="[" * 100_000 + "]" * 100_000),
        "invalid metadata 'sk_mnist.classes': not JSON (RecursionError)",
    ),
    "classes-not-a-list": (
        with_metadata(classes='{"0": 1}'),
        "expected a non-empty list of strings and numbers",
    ),
    "classes-nested": (
        with_metadata(classes="[[0], [1], [2]]"),
        "expected a non-empty list of strings and numbers",
    ),
    "classes-none": (
        with_metadata(classes="[0, null, 2]"),
        "expected a non-empty list of strings and numbers",
    ),
    "classes-empty": (with_metadata(classes="[]"), "expected a non-empty list of strings and numbers"),
    "image-shape-other-size": (
        with_metadata(image_shape="[1, 3, 3]"),
        "invalid metadata 'sk_mnist.image_shape': expected the (channels, height, width) of 4 pixels, got [1, 3, 3]",
    ),
    "image-shape-negative": (with_metadata(image_shape="[-1, -2, 2]"), "of 4 pixels, got [-1, -2, 2]"),
    "image-shape-2d": (with_metadata(image_shape="[2, 2]"), "of 4 pixels, got [2, 2]"),
    "image-shape-floats": (with_metadata(image_shape="[1.0, 2.0, 2.0]"), "of 4 pixels, got [1.0, 2.0, 2.0]"),
    "feature-names-too-few": (
        with_metadata(feature_names='["a", "b"]'),
        "invalid metadata 'sk_mnist.feature_names': expected a list of 4 strings",
    ),
    "feature-names-numbers": (with_metadata(feature_names="[1, 2, 3, 4]"), "expected a list of 4 strings"),
}


@pytest.mark.parametrize("case", BAD_METADATA)
def test_bad_metadata_is_refused_at_fit(tmp_path, case):
    metadata, message = BAD_METADATA[case]
    path = save(helper.make_model(softmax_graph(), opset_imports=OPSET), tmp_path / "meta.onnx", metadata)
    clf = ONNXClassifier(path)
    with pytest.raises(ValueError) as info:
        clf.fit()
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((1, N_FEATURES)))


INPUT = f"{NOT_OURS}the graph must take one input 'pixels' of float32 pixel rows"
OUTPUT = f"{NOT_OURS}the graph must return one output 'probabilities' of float32 probabilities, one column for each"


def cast_graph(inputs):
    """A graph whose input, of any name or type, becomes float pixels for the softmax graph."""
    graph = softmax_graph()
    graph.node.insert(0, helper.make_node("Cast", [inputs[0].name], ["pixels"], to=TensorProto.FLOAT))
    del graph.input[:]
    graph.input.extend(inputs)
    return graph


def reshaped_graph(shape):
    """A graph taking pixels of ``shape``, reshaped to rows of 4 for the softmax graph."""
    graph = softmax_graph()
    graph.initializer.append(numpy_helper.from_array(np.array([-1, N_FEATURES], np.int64), "rows_shape"))
    graph.node.insert(0, helper.make_node("Reshape", ["raw", "rows_shape"], ["pixels"]))
    del graph.input[:]
    graph.input.append(rows("raw", shape=shape))
    return graph


def two_inputs_graph():
    graph = softmax_graph()
    graph.input.append(rows("extra"))
    return graph


def renamed_output_graph(name):
    graph = softmax_graph()
    graph.node[-1].output[0] = graph.output[0].name = name
    return graph


def float64_output_graph():
    graph = softmax_graph()
    graph.node[-1].output[0] = "float_probabilities"
    graph.node.append(
        helper.make_node("Cast", ["float_probabilities"], ["probabilities"], to=TensorProto.DOUBLE)
    )
    graph.output[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    return graph


def two_outputs_graph():
    graph = softmax_graph()
    graph.output.append(rows("logits", shape=("batch", N_CLASSES)))
    return graph


def data_dependent_width_graph():
    """As many columns as the largest pixel's value: a width no file states."""
    one = numpy_helper.from_array(np.ones((1, 1), np.float32), "one")
    nodes = [
        helper.make_node("Shape", ["pixels"], ["batch"], end=1),
        helper.make_node("ReduceMax", ["pixels"], ["largest"], keepdims=0),
        helper.make_node("Cast", ["largest"], ["largest_int"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["largest_int", "axes"], ["width"]),
        helper.make_node("Concat", ["batch", "width"], ["shape"], axis=0),
        helper.make_node("Expand", ["one", "shape"], ["probabilities"]),
    ]
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    output = rows("probabilities", shape=("batch", "width"))
    return helper.make_graph(nodes, "width", [rows()], [output], initializer=[one, axes])


BAD_GRAPHS = {
    "input-rank-1": (lambda: reshaped_graph(["n"]), INPUT),
    "input-rank-3": (lambda: reshaped_graph(["batch", 2, 2]), INPUT),
    "input-fixed-batch": (lambda: reshaped_graph([1, N_FEATURES]), INPUT),
    "input-unknown-width": (lambda: reshaped_graph(["batch", "width"]), INPUT),
    "input-other-name": (lambda: cast_graph([rows("image", TensorProto.FLOAT)]), INPUT),
    "input-float64": (lambda: cast_graph([rows("pixels_64", TensorProto.DOUBLE)]), INPUT),
    "input-uint8": (lambda: cast_graph([rows("pixels_u8", TensorProto.UINT8)]), INPUT),
    "two-inputs": (two_inputs_graph, INPUT),
    "output-2-columns-for-3-classes": (lambda: softmax_graph(n_classes=2), f"{OUTPUT} of the 3 classes"),
    "output-4-columns-for-3-classes": (lambda: softmax_graph(n_classes=4), f"{OUTPUT} of the 3 classes"),
    "output-data-dependent-width": (data_dependent_width_graph, OUTPUT),
    "output-other-name": (lambda: renamed_output_graph("scores"), OUTPUT),
    "output-float64": (float64_output_graph, OUTPUT),
    "two-outputs": (two_outputs_graph, OUTPUT),
}


@pytest.mark.parametrize("case", BAD_GRAPHS)
def test_a_graph_predict_cannot_run_is_refused_at_fit(tmp_path, case):
    make_graph, message = BAD_GRAPHS[case]
    clf = ONNXClassifier(save(helper.make_model(make_graph(), opset_imports=OPSET), tmp_path / "graph.onnx"))
    with pytest.raises(ValueError) as info:
        clf.fit()
    assert str(info.value).startswith(f"{tmp_path / 'graph.onnx'} {message}")
    with pytest.raises(NotFittedError):
        clf.predict(np.zeros((1, N_FEATURES)))


def test_a_refit_on_a_file_without_feature_names_forgets_them(tmp_path):
    graph = lambda: helper.make_model(softmax_graph(), opset_imports=OPSET)
    named = save(graph(), tmp_path / "named.onnx", with_metadata(feature_names='["a", "b", "c", "d"]'))
    clf = ONNXClassifier(named).fit()
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    clf.set_params(path=save(graph(), tmp_path / "plain.onnx")).fit()
    assert not hasattr(clf, "feature_names_in_")
