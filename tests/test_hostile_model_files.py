"""Model files crafted to make ``load`` allocate, hang or fail in ways it must not.

Each file here has consistent checksums, as an attacker would write it: the
checks behind the checksums must hold on their own. Every refusal is a
``ValueError`` naming the file.
"""

import hashlib
import json
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import LabelEncoder

from sk_mnist import MNISTCNNClassifier, make_cnn_ensemble
from sk_mnist.persistence import load, save
from sk_mnist.persistence._tree import Reader

pytest.importorskip("safetensors")

TINY = {"max_epochs": 1, "early_stopping": False, "random_state": 0}
CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:200], y[:200], X[200:300]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y, _ = digits
    return MNISTCNNClassifier(device="cpu", **TINY).fit(X, y)


@pytest.fixture
def saved(fitted, tmp_path):
    path = tmp_path / "model.skm"
    save(fitted, path)
    return path


def rewrite(path, edit, out):
    """Apply ``edit`` to the estimator tree of ``path``, write ``out`` with matching checksums."""
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    tree = json.loads(entries["estimator.json"])
    edit(tree)
    entries["estimator.json"] = json.dumps(tree).encode()
    manifest = json.loads(entries["manifest.json"])
    for name in ("estimator.json", "weights.safetensors"):
        data = entries[name]
        manifest["members"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out


CLASSES = "estimator.json.state.classes_inferred_"


def with_classes(array):
    """An edit that replaces the classifier's classes with the ``__ndarray__`` node ``array``."""

    def edit(tree):
        tree["state"]["classes_inferred_"] = {"__ndarray__": array}

    return edit


# -- arrays declaring more than the file holds ------------------------------------


@pytest.mark.parametrize(
    "itemsize",
    [
        500_000_000,  # 10 x 2 GB: numpy's MemoryError, before the fix
        5_000_000,  # 10 x 20 MB: allocated and filled, before the fix
    ],
)
def test_string_dtype_wider_than_its_data_is_refused_unallocated(itemsize, saved, tmp_path):
    # Ten one-character strings declared as numpy strings of `itemsize`
    # characters (4 bytes each): 40 * itemsize bytes from a few bytes of JSON.
    array = {"dtype": f"<U{itemsize}", "shape": [10], "data": [str(d) for d in range(10)]}
    path = rewrite(saved, with_classes(array), tmp_path / "wide.skm")
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError,
            match=f"wide.skm: invalid model description: .*declares strings of {itemsize} characters, "
            "but its longest string has 1",
        ):
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The weights and JSON of this small model are well under a megabyte each.
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MB allocated while refusing"


def test_string_dtype_narrower_than_its_data_is_refused(saved, tmp_path):
    # numpy would silently cut the strings to the declared width ("10" to "1").
    array = {"dtype": "<U1", "shape": [10], "data": [str(d) for d in range(9)] + ["10"]}
    path = rewrite(saved, with_classes(array), tmp_path / "narrow.skm")
    with pytest.raises(ValueError, match="declares strings of 1 characters, but its longest string has 2"):
        load(path)


def test_padded_string_classes_round_trip(digits, tmp_path):
    # Labels whose dtype is wider than any class fitted on ("three", "seven",
    # "eight" left out of the training set): the file must carry the width,
    # and load must accept it.
    X, y, X_test = digits
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    keep = ~np.isin(y, [3, 7, 8])
    labels = names[y[keep]]
    assert labels.dtype == "<U5" and max(map(len, labels)) == 4
    clf = MNISTCNNClassifier(**TINY).fit(X[keep], labels)
    save(clf, tmp_path / "padded.skm")
    restored = load(tmp_path / "padded.skm")
    assert restored.classes_.dtype == clf.classes_.dtype == np.dtype("<U5")
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    np.testing.assert_array_equal(restored.predict(X_test), clf.predict(X_test))


@pytest.mark.parametrize(
    "dtype, stored", [("<U2", ["a", "bb"]), ("<U5", ["a\0\0\0\0", "bb"])], ids=["as-wide", "wider"]
)
def test_strings_are_padded_only_to_keep_a_wider_dtype(dtype, stored, tmp_path):
    # One string padded with NULs (which numpy strips) carries a width that no
    # string needs; strings as wide as their dtype are written as they are.
    encoder = LabelEncoder().fit(np.array(["bb", "a"], dtype=dtype))
    save(encoder, tmp_path / "labels.skm")
    with zipfile.ZipFile(tmp_path / "labels.skm") as archive:
        tree = json.loads(archive.read("estimator.json"))
    assert tree["state"]["classes_"]["__ndarray__"] == {"dtype": dtype, "shape": [2], "data": stored}
    restored = load(tmp_path / "labels.skm")
    assert restored.classes_.dtype == dtype and restored.classes_.tolist() == ["a", "bb"]


def test_many_dimensions_are_refused_at_once(saved, tmp_path):
    # The product of a million 2s takes minutes to compute in Python integers
    # (each step multiplies a number of up to a million bits).
    array = {"dtype": "<i8", "shape": [2] * 1_000_000, "data": list(range(10))}
    path = rewrite(saved, with_classes(array), tmp_path / "dims.skm")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="declares 1000000 dimensions; numpy arrays have at most 64"):
        load(path)
    assert time.perf_counter() - start < 10


TEN = list(range(10))


@pytest.mark.parametrize(
    "array, message",
    [
        (
            {"dtype": "<i8", "shape": [10]},
            " has keys ['dtype', 'shape']; expected ['data', 'dtype', 'shape']",
        ),
        (
            {"dtype": "<i8", "shape": [10], "data": TEN, "tensor": "arrays/0"},
            " has keys ['data', 'dtype', 'shape', 'tensor']; expected ['dtype', 'shape', 'tensor']",
        ),
        ({"dtype": 5, "shape": [10], "data": TEN}, ": arrays of dtype 5 are not allowed"),
        ({"dtype": "<c16", "shape": [10], "data": TEN}, ": arrays of dtype '<c16' are not allowed"),
        ({"dtype": "i8,i8", "shape": [10], "data": TEN}, ": arrays of dtype 'i8,i8' are not allowed"),
        ({"dtype": "(2,)i8", "shape": [10], "data": TEN}, ": arrays of dtype '(2,)i8' are not allowed"),
        ({"dtype": "<i8", "shape": [-2, -5], "data": TEN}, ": malformed array shape"),
        ({"dtype": "<i8", "shape": [10.0], "data": TEN}, ": malformed array shape"),
        ({"dtype": "<i8", "shape": "10", "data": TEN}, ": malformed array shape"),
        ({"dtype": "<i8", "shape": [10], "data": "0123456789"}, ": array data must be a flat list"),
        ({"dtype": "<i8", "shape": [3], "data": TEN}, ": 10 array values for shape (3,)"),
        # 64 values in int64 arithmetic, where the product wraps around.
        (
            {"dtype": "<i8", "shape": [2**62 + 1, 64], "data": list(range(64))},
            f": 64 array values for shape ({2**62 + 1}, 64)",
        ),
        ({"dtype": "<i8", "shape": [10], "tensor": 5}, ": malformed array reference"),
        ({"dtype": "<i8", "shape": [10], "tensor": "tensors/1"}, ": malformed array reference"),
        ({"dtype": "<i8", "shape": [10], "tensor": "arrays/99"}, ": no stored tensor 'arrays/99'"),
    ],
    ids=[
        "no-data",
        "data-and-tensor",
        "dtype-number",
        "complex",
        "structured",
        "sub-array",
        "negative-shape",
        "float-shape",
        "string-shape",
        "string-data",
        "too-many-values",
        "wrapping-shape",
        "number-reference",
        "optimizer-reference",
        "absent-reference",
    ],
)
def test_malformed_array_is_refused_where_it_is(array, message, saved, tmp_path):
    path = rewrite(saved, with_classes(array), tmp_path / "array.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == f"{path}: invalid model description: {CLASSES}{message}"


@pytest.mark.parametrize("shape", [[0], [3, 0], [1] * 64], ids=["empty", "empty-rows", "64-d"])
def test_empty_and_64_dimension_arrays_are_read(shape):
    # numpy's limits, not stricter ones: zero-length axes and 64 dimensions.
    size = int(np.prod(shape))
    array = Reader({}).array({"dtype": "<i8", "shape": shape, "data": list(range(size))}, "x")
    assert array.shape == tuple(shape) and array.dtype == np.int64


@pytest.mark.parametrize(
    "dtype, data, message",
    [
        ("|i1", [*range(9), 1000], "value out of range for int8"),
        ("|u1", [*range(9), -1], "value out of range for uint8"),
        ("<i8", [*range(9), 2**70], "value out of range for int64"),
    ],
    ids=["int8", "uint8", "int64"],
)
def test_values_out_of_range_for_their_dtype_are_refused(dtype, data, message, saved, tmp_path):
    # numpy raises OverflowError, which is not a ValueError.
    array = {"dtype": dtype, "shape": [10], "data": data}
    path = rewrite(saved, with_classes(array), tmp_path / "range.skm")
    with pytest.raises(ValueError, match=f"range.skm: invalid model description: {CLASSES}: {message}"):
        load(path)


@pytest.mark.parametrize(
    "dtype, data, message",
    [
        ("<i8", [str(d) for d in range(10)], "an array of dtype int64 holds only integers; found '0'"),
        ("<i8", [d + 0.5 for d in range(10)], "an array of dtype int64 holds only integers; found 0.5"),
        ("|b1", ["no"] * 10, "an array of dtype bool holds only booleans; found 'no'"),
        ("<U1", list(range(10)), "an array of dtype <U1 holds only strings; found 0"),
        ("<f8", [None] * 10, "an array of dtype float64 holds only numbers; found None"),
    ],
    ids=["strings-as-int", "floats-as-int", "strings-as-bool", "numbers-as-str", "null"],
)
def test_values_of_another_kind_are_refused(dtype, data, message, saved, tmp_path):
    # numpy would convert them silently: "0" to 0, 0.5 to 0, "no" to True, 0 to "0".
    array = {"dtype": dtype, "shape": [10], "data": data}
    path = rewrite(saved, with_classes(array), tmp_path / "kind.skm")
    with pytest.raises(ValueError, match=f"kind.skm: invalid model description: {CLASSES}: {message}"):
        load(path)


@pytest.mark.parametrize(
    "shape",
    [[1, 10**6, 10**6], [1, -8, 8], [1, -8, -8], [1, 8.0, 8], [3, 8, 8], [1, 8], [1, 2**62 + 1, 64]],
    # "wrapping": 64 pixels in int64 arithmetic, where the product wraps around.
    ids=["huge", "negative", "negative-pair", "float", "more-pixels", "2-d", "wrapping"],
)
def test_image_shape_the_pixels_cannot_fill_is_refused(shape, saved, tmp_path):
    # The weights do not depend on the image size: before the fix a huge shape
    # loaded, and the first prediction tried to allocate terabytes.
    def edit(tree):
        tree["state"]["image_shape_"] = {"__tuple__": shape}

    path = rewrite(saved, edit, tmp_path / "shape.skm")
    with pytest.raises(
        ValueError,
        match=rf"shape.skm: invalid model description: estimator.json: image_shape_ \({shape[0]}, .* is not a "
        r"\(channels, height, width\) shape that 64 pixels fill",
    ):
        load(path)


@pytest.mark.parametrize(
    "declared",
    [{"shape": [64, 200]}, {"shape": [200, 32]}, {"dtype": "<f4"}, {"dtype": "<i8"}],
    ids=["transposed", "other-shape", "float32", "int64"],
)
def test_tensor_backed_array_must_match_its_declaration(declared, saved, tmp_path):
    # The rehearsal buffer (200 x 64 float64) is stored as a tensor and
    # described in the JSON. A declaration that the stored tensor contradicts
    # (checksums recomputed, so only this check can tell) is refused, not
    # loaded with whatever dtype and shape the tensor has.
    def edit(tree):
        node = tree["state"]["rehearsal_X_"]["__ndarray__"]
        assert (node["dtype"], node["shape"], node["tensor"][:7]) == ("<f8", [200, 64], "arrays/")
        node.update(declared)

    path = rewrite(saved, edit, tmp_path / "declared.skm")
    with pytest.raises(
        ValueError,
        match="declared.skm: invalid model description: .*rehearsal_X_.*the stored tensor does not have "
        "the declared dtype and shape",
    ):
        load(path)


# -- devices -----------------------------------------------------------------------


def with_device(device):
    def edit(tree):
        tree["params"]["device"] = device

    return edit


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    "device, shown",
    [("cuda", "cuda"), ({"__device__": "cuda:0"}, "cuda:0"), ("meta", "meta")],  # meta holds no values
    ids=["str", "torch.device", "meta"],
)
def test_file_saved_for_an_absent_device_loads_on_the_cpu(device, shown, fitted, saved, tmp_path, digits):
    path = rewrite(saved, with_device(device), tmp_path / "gpu.skm")
    with pytest.warns(UserWarning) as record:
        restored = load(path)
    assert [str(w.message) for w in record] == [
        f"{path} was saved for device '{shown}', which is not available here; loaded on the CPU."
    ]
    # It points at the caller of load (or, in mutation testing, at the frame
    # that wraps load: still outside the package).
    assert record[0].filename == __file__ or "mutmut" in record[0].filename
    assert restored.device == "cpu" and restored.get_params()["device"] == "cpu"
    assert next(restored.module_.parameters()).device == torch.device("cpu")
    np.testing.assert_array_equal(restored.predict_proba(digits[2]), fitted.predict_proba(digits[2]))


@pytest.mark.skipif(CUDA, reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    "devices, shown",
    [(["cuda", "cuda"], "'cuda'"), (["cuda:1", "cuda"], "'cuda', 'cuda:1'")],
    ids=["one-device", "two-devices"],
)
def test_ensemble_saved_for_an_absent_device_warns_once(devices, shown, digits, tmp_path):
    X, y, X_test = digits
    ensemble = make_cnn_ensemble(2, device="cpu", **TINY).fit(X, y)
    save(ensemble, tmp_path / "ensemble.skm")

    def edit(tree):
        for member, device in zip(tree["params"]["estimators"], devices, strict=True):
            member["__tuple__"][1]["__estimator__"]["params"]["device"] = device
        for member, device in zip(tree["state"]["estimators_"], devices, strict=True):
            member["__estimator__"]["params"]["device"] = device

    path = rewrite(tmp_path / "ensemble.skm", edit, tmp_path / "gpu.skm")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = load(path)
    # One warning, naming each absent device once, sorted.
    assert [str(w.message) for w in caught if w.category is UserWarning] == [
        f"{path} was saved for device {shown}, which is not available here; loaded on the CPU."
    ]
    assert [member.device for member in restored.estimators_] == ["cpu", "cpu"]
    np.testing.assert_array_equal(restored.predict_proba(X_test), ensemble.predict_proba(X_test))


def test_device_keyword_overrides_the_saved_device(fitted, saved, tmp_path, digits):
    path = rewrite(saved, with_device("cuda" if not CUDA else "cpu"), tmp_path / "other.skm")
    device = "cpu" if not CUDA else "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit device is used as given, without a warning
        restored = load(path, device=device)
    assert restored.get_params()["device"] == device
    assert next(restored.module_.parameters()).device.type == device
    np.testing.assert_allclose(restored.predict_proba(digits[2]), fitted.predict_proba(digits[2]), atol=1e-5)


def test_available_saved_device_is_kept(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load(saved).get_params()["device"] == "cpu"


def test_description_without_a_device_loads_on_the_default_one(fitted, saved, tmp_path, digits):
    # A parameter the description leaves out takes its default, the device too.
    path = rewrite(saved, lambda tree: tree["params"].pop("device"), tmp_path / "no-device.skm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = load(path)
    assert restored.get_params()["device"] == MNISTCNNClassifier().get_params()["device"]
    np.testing.assert_array_equal(restored.predict_proba(digits[2]), fitted.predict_proba(digits[2]))


@pytest.mark.parametrize(
    "device, error, message",
    [
        ("bogus", ValueError, "device='bogus' is not a torch device"),
        (3.5, TypeError, "device must be None, a str or a torch.device; got float"),
        pytest.param(
            "cuda",
            ValueError,
            "device='cuda' is not available here",
            marks=pytest.mark.skipif(CUDA, reason="needs a machine without CUDA"),
        ),
    ],
    ids=["bogus", "float", "absent-cuda"],
)
def test_bad_device_keyword_is_refused_before_reading(device, error, message, tmp_path):
    # Checked first: the file does not even exist.
    with pytest.raises(error, match=message):
        load(tmp_path / "missing.skm", device=device)


def test_bogus_saved_device_is_refused(saved, tmp_path):
    path = rewrite(saved, with_device("bogus"), tmp_path / "bogus.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: invalid model description: estimator.json.params.device='bogus' is not a torch device"
    )


@pytest.mark.parametrize(
    "items, message",
    [
        ({"__items__": [[0, 1.0], [1]]}, "__items__ must be a list of [key, value] pairs"),
        ({"__items__": [[0, 1.0], "x"]}, "__items__ must be a list of [key, value] pairs"),
        ({"__items__": [[[0], 1.0]]}, "a key of __items__ is not hashable"),
        ({"__items__": [[0, 1.0], [0, 2.0]]}, "__items__ names a key twice"),
        ({"__items__": {"0": 1.0}}, "'__items__' with this content is not a value a model file may hold"),
        (
            {"__items__": [[0, 1.0], [{"__x__": 1}, 1.0]]},
            "[1]: '__x__' with this content is not a value a model file may hold",
        ),
        (
            {"__items__": [[0, {"__x__": 1}]]},
            "[0]: '__x__' with this content is not a value a model file may hold",
        ),
    ],
    ids=["short-pair", "not-a-pair", "unhashable", "twice", "not-a-list", "bad-key", "bad-value"],
)
def test_malformed_dict_items_are_refused(items, message, saved, tmp_path):
    def edit(tree):
        tree["params"]["class_weight"] = items

    path = rewrite(saved, edit, tmp_path / "items.skm")
    with pytest.raises(ValueError) as caught:
        load(path)
    separator = "" if message.startswith("[") else ": "
    assert str(caught.value) == (
        f"{path}: invalid model description: estimator.json.params.class_weight{separator}{message}"
    )


def test_a_rehearsal_buffer_without_its_labels_is_refused(saved, tmp_path):
    def edit(tree):
        del tree["state"]["rehearsal_y_"], tree["state"]["rehearsal_sample_weight_"]

    path = rewrite(saved, edit, tmp_path / "buffer.skm")
    with pytest.raises(
        ValueError, match="rehearsal_X_, rehearsal_y_ and rehearsal_sample_weight_ must be arrays"
    ):
        load(path)
