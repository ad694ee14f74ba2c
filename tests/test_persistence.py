import hashlib
import json
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from skorch.callbacks import EpochTimer

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, make_cnn_ensemble
from sk_mnist.modules import LeNet
from sk_mnist.persistence import load, save
from sk_mnist.preprocessing import Deskewer, GlobalStandardizer, PixelScaler

pytest.importorskip("safetensors")

FAST = {"max_epochs": 2, "random_state": 0}
TINY = {"max_epochs": 1, "early_stopping": False, "random_state": 0}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:240], y[:240], X[240:400]


@pytest.fixture(scope="module")
def fitted(digits):
    X, y, _ = digits
    return MNISTCNNClassifier(**FAST).fit(X, y)


@pytest.fixture
def saved(fitted, tmp_path):
    path = tmp_path / "model.skm"
    save(fitted, path)
    return path


def fitted_names(est):
    return sorted(name for name in vars(est) if name.endswith("_"))


def assert_same_classifier(restored, original, X):
    assert type(restored) is type(original)
    np.testing.assert_array_equal(restored.predict_proba(X), original.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), original.predict(X))
    assert restored.get_params() == original.get_params()
    assert fitted_names(restored) == fitted_names(original)
    np.testing.assert_array_equal(restored.classes_, original.classes_)
    assert restored.classes_.dtype == original.classes_.dtype
    assert restored.image_shape_ == original.image_shape_
    assert (restored.pixel_mean_, restored.pixel_std_) == (original.pixel_mean_, original.pixel_std_)
    assert restored.n_iter_ == original.n_iter_
    assert restored.history_.to_list() == original.history_.to_list()


# -- round trips ----------------------------------------------------------------


def test_classifier_round_trip_is_bit_identical(fitted, saved, digits):
    restored = load(saved)
    assert_same_classifier(restored, fitted, digits[2])
    # The network is rebuilt, not shared, and restored tensor for tensor.
    assert restored.module_ is not fitted.module_
    for (name, a), (_, b) in zip(
        restored.module_.state_dict().items(), fitted.module_.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_method_and_top_level_functions_write_the_same_file(fitted, saved, tmp_path):
    import sk_mnist

    assert fitted.save(tmp_path / "by-method.skm") is fitted
    sk_mnist.save(fitted, tmp_path / "by-function.skm")
    assert (tmp_path / "by-method.skm").read_bytes() == saved.read_bytes()
    assert (tmp_path / "by-function.skm").read_bytes() == saved.read_bytes()
    assert sk_mnist.load is load


def test_file_layout(saved):
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["estimator.json", "manifest.json", "weights.safetensors"]
        manifest = json.loads(archive.read("manifest.json"))
        tree = json.loads(archive.read("estimator.json"))
        for name in ("estimator.json", "weights.safetensors"):
            data = archive.read(name)
            assert manifest["members"][name] == {
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
    assert manifest["format"] == "sk_mnist-model" and manifest["format_version"] == 1
    assert manifest["estimator"] == tree["class"] == "sk_mnist.MNISTCNNClassifier"
    assert tree["params"]["optimizer"] == {"__class__": "torch.optim.Adam"}
    assert tree["state"]["classes_inferred_"]["__ndarray__"]["data"] == list(range(10))
    # Bulk numbers (the rehearsal buffer) go with the weights, not into the JSON.
    assert tree["state"]["rehearsal_X_"]["__ndarray__"] == {
        "dtype": "<f8",
        "shape": [240, 64],
        "tensor": "arrays/0",
    }


def test_saving_is_deterministic(fitted, saved, tmp_path):
    save(fitted, tmp_path / "again.skm")
    assert (tmp_path / "again.skm").read_bytes() == saved.read_bytes()


def test_loading_leaves_the_random_state_alone(saved):
    before = torch.get_rng_state()
    load(saved)
    assert torch.equal(torch.get_rng_state(), before)


def test_restored_classifier_trains_on_exactly_as_the_saved_one(fitted, saved, digits):
    # Weights, optimizer state (Adam's moments), history and rehearsal buffer
    # are all restored: one more partial_fit epoch gives the very same model.
    X, y, X_test = digits
    restored = load(saved)
    np.testing.assert_array_equal(restored.rehearsal_X_, fitted.rehearsal_X_)
    np.testing.assert_array_equal(restored.rehearsal_y_, fitted.rehearsal_y_)
    original = pickle.loads(pickle.dumps(fitted))  # a copy, left to train alongside
    original.partial_fit(X[:50], y[:50])
    restored.partial_fit(X[:50], y[:50])
    assert restored.n_iter_ == original.n_iter_ == 3
    np.testing.assert_array_equal(restored.predict_proba(X_test), original.predict_proba(X_test))


def test_string_labels_feature_names_and_unusual_params(digits, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y, X_test = digits
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    clf = MNISTCNNClassifier(
        architecture=LeNet,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        module__hidden_units=64,
        criterion__label_smoothing=0.1,
        device=torch.device("cpu"),
        checkpoint_dir=tmp_path / "checkpoints",
        early_stopping=False,
        max_epochs=1,
        random_state=1,
    ).fit(frame, labels)
    save(clf, tmp_path / "model.skm")
    restored = load(tmp_path / "model.skm")
    test_frame = pd.DataFrame(X_test, columns=frame.columns)
    assert_same_classifier(restored, clf, test_frame)
    np.testing.assert_array_equal(restored.feature_names_in_, frame.columns)
    assert restored.optimizer is torch.optim.SGD and restored.architecture is LeNet
    assert restored.device == torch.device("cpu") and isinstance(restored.checkpoint_dir, Path)


def test_pipeline_round_trip(digits, tmp_path):
    X, y, X_test = digits
    pipe = make_pipeline(Deskewer(), GlobalStandardizer(), MNISTCNNClassifier(**FAST)).fit(X, y)
    save(pipe, tmp_path / "pipe.skm")
    restored = load(tmp_path / "pipe.skm")
    assert [name for name, _ in restored.steps] == [name for name, _ in pipe.steps]
    np.testing.assert_array_equal(restored[:-1].transform(X_test), pipe[:-1].transform(X_test))
    assert_same_classifier(restored[-1], pipe[-1], pipe[:-1].transform(X_test))
    np.testing.assert_array_equal(restored.predict_proba(X_test), pipe.predict_proba(X_test))


@pytest.mark.parametrize(
    "transformer", [PixelScaler(max_value=16.0), GlobalStandardizer(), Deskewer(chunk_size=7)]
)
def test_transformer_round_trip_with_pandas_output(transformer, digits, tmp_path):
    pytest.importorskip("pandas")
    X, _, X_test = digits
    transformer.set_output(transform="pandas").fit(X)
    save(transformer, tmp_path / "t.skm")
    restored = load(tmp_path / "t.skm")
    assert restored.get_params() == transformer.get_params()
    assert vars(restored).keys() == vars(transformer).keys()
    expected = transformer.transform(X_test)
    assert type(restored.transform(X_test)) is type(expected)
    np.testing.assert_array_equal(restored.transform(X_test), expected)


def test_ensemble_round_trip(digits, tmp_path):
    X, y, X_test = digits
    ensemble = make_cnn_ensemble(2, **TINY).fit(X, y)
    save(ensemble, tmp_path / "ensemble.skm")
    restored = load(tmp_path / "ensemble.skm")
    np.testing.assert_array_equal(restored.predict_proba(X_test), ensemble.predict_proba(X_test))
    np.testing.assert_array_equal(restored.classes_, ensemble.classes_)
    assert list(restored.named_estimators_) == ["cnn_0", "cnn_1"]
    assert restored.named_estimators_["cnn_1"] is restored.estimators_[1]
    for member, original in zip(restored.estimators_, ensemble.estimators_, strict=True):
        assert_same_classifier(member, original, X_test)


def test_distilled_student_round_trip(fitted, digits, tmp_path):
    X, y, X_test = digits
    student = DistilledCNNClassifier(fitted, **TINY).fit(X, y)
    student.save(tmp_path / "student.skm")
    restored = load(tmp_path / "student.skm")
    assert type(restored) is DistilledCNNClassifier
    np.testing.assert_array_equal(restored.predict_proba(X_test), student.predict_proba(X_test))
    assert fitted_names(restored) == fitted_names(student)
    params = {key: value for key, value in student.get_params(deep=False).items() if key != "teacher"}
    assert {key: restored.get_params(deep=False)[key] for key in params} == params
    # Both teachers come back: the fitted one a refit would use, and the parameter.
    assert_same_classifier(restored.teacher_, student.teacher_, X_test)
    assert_same_classifier(restored.teacher, fitted, X_test)
    # Training on asks the restored teacher, and goes on exactly as it would have.
    student.partial_fit(X, y)
    restored.partial_fit(X, y)
    np.testing.assert_array_equal(restored.predict_proba(X_test), student.predict_proba(X_test))


# -- what save refuses ----------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: make_pipeline(PixelScaler(), LogisticRegression()), "not sklearn.linear_model"),
        (
            lambda: MNISTCNNClassifier(callbacks=[EpochTimer()], **TINY),
            r"callbacks\[0\].*set_params\(callbacks=None\)",
        ),
        (
            lambda: MNISTCNNClassifier(optimizer=type("MyAdam", (torch.optim.Adam,), {}), **TINY),
            "names only torch's optimizers .* not test_persistence.MyAdam",
        ),
        (
            lambda: MNISTCNNClassifier(
                max_epochs=1, early_stopping=False, random_state=np.random.RandomState(0)
            ),
            "random_state: a model file cannot hold a numpy.random.mtrand.RandomState",
        ),
        (
            lambda: DistilledCNNClassifier(KNeighborsClassifier(), **TINY),
            r"teacher: a model file can hold .* not sklearn.neighbors",
        ),
    ],
    ids=["foreign-estimator", "callbacks", "custom-optimizer", "RandomState", "foreign-teacher"],
)
def test_save_refuses_what_it_cannot_restore(make, message, digits, tmp_path):
    X, y, _ = digits
    est = make().fit(X[:60], y[:60])
    with pytest.raises(TypeError, match=message):
        save(est, tmp_path / "model.skm")
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_unknown_fitted_attributes(fitted, tmp_path):
    # Anything the format does not know would be silently lost: refuse instead.
    clf = pickle.loads(pickle.dumps(fitted))
    clf.calibration_ = 1.0
    with pytest.raises(TypeError, match=r"attributes \['calibration_'\]"):
        save(clf, tmp_path / "model.skm")


def test_save_refuses_unfitted(tmp_path):
    with pytest.raises(NotFittedError):
        save(MNISTCNNClassifier(), tmp_path / "model.skm")


# -- atomic writes ----------------------------------------------------------------


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing swallows it."""


@pytest.mark.parametrize("when", ["mid-archive", "before-rename"])
def test_interrupted_save_leaves_the_previous_file(when, fitted, saved, digits, monkeypatch):
    good = saved.read_bytes()
    other = GlobalStandardizer().fit(digits[0])
    if when == "mid-archive":
        original = zipfile.ZipFile.writestr

        def writestr(self, info, data, *args, **kwargs):
            original(self, info, data, *args, **kwargs)
            if getattr(info, "filename", info) == "estimator.json":
                raise Crash  # after some of the archive is on disk

        monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    else:

        def replace(src, dst):
            assert Path(src).stat().st_size > 0  # the new file was complete
            raise Crash

        monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Crash):
        save(other, saved)
    monkeypatch.undo()
    assert saved.read_bytes() == good
    assert list(saved.parent.iterdir()) == [saved]  # no temporary file left behind
    np.testing.assert_array_equal(load(saved).predict_proba(digits[2]), fitted.predict_proba(digits[2]))


# -- what load refuses ------------------------------------------------------------


def members(path):
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_archive(path, entries, fix_checksums=False):
    """Write ``entries`` (a list of (name, bytes)) as a zip, optionally re-signing the manifest."""
    entries = dict(entries) if fix_checksums else entries
    if fix_checksums:
        manifest = json.loads(entries["manifest.json"])
        for name in ("estimator.json", "weights.safetensors"):
            data = entries[name]
            manifest["members"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        entries["manifest.json"] = json.dumps(manifest).encode()
        entries = list(entries.items())
    # zipfile warns about the duplicate names some tests write on purpose.
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for name, data in entries:
            archive.writestr(name, data)
    return path


def edit_json(data, edit):
    tree = json.loads(data)
    edit(tree)
    return json.dumps(tree).encode()


def test_flipped_byte_is_caught_by_the_zip_crc(saved):
    data = bytearray(saved.read_bytes())
    weights = members(saved)["weights.safetensors"]
    offset = bytes(data).index(weights[-4096:])  # inside the stored weights
    data[offset + 100] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(
        ValueError, match="model.skm: damaged model file: Bad CRC-32 for file 'weights.safetensors'"
    ):
        load(saved)


@pytest.mark.parametrize("member", ["weights.safetensors", "estimator.json"])
def test_modified_member_fails_its_checksum(member, saved, tmp_path):
    entries = members(saved)
    data = bytearray(entries[member])
    data[-2] ^= 0x01  # a consistent zip around a changed member
    entries[member] = bytes(data)
    path = write_archive(tmp_path / "tampered.skm", list(entries.items()))
    with pytest.raises(ValueError, match=f"{member} fails its sha256 check"):
        load(path)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file(keep, saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="model.skm: (not an sk_mnist model file|damaged model file)"):
        load(saved)


class _Marker:
    """Unpickling this creates a file: proof that a pickle was (or was not) run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path(self.path).touch, ())


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_is_refused_unopened(protocol, tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.skm"
    path.write_bytes(pickle.dumps(_Marker(marker), protocol=protocol))
    with pytest.raises(ValueError, match="looks like a pickle, which this function never loads"):
        load(path)
    assert not marker.exists()


def test_joblib_file_is_refused(fitted, tmp_path):
    joblib = pytest.importorskip("joblib")
    joblib.dump(fitted, tmp_path / "model.joblib")
    with pytest.raises(ValueError, match="not an sk_mnist model file"):
        load(tmp_path / "model.joblib")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: e.append(("notes.txt", b"hi")), "holds the members"),
        (
            lambda e: e.__setitem__(1, ("../estimator.json", e[1][1])),
            r"holds the members \['../estimator.json'",
        ),
        (lambda e: e.append(e[0]), "holds the members"),  # a duplicate manifest.json
        (lambda e: e.pop(), "holds the members"),
    ],
    ids=["extra-member", "path-traversal", "duplicate", "missing"],
)
def test_unexpected_members_are_refused(change, message, saved, tmp_path):
    entries = list(members(saved).items())
    change(entries)
    path = write_archive(tmp_path / "odd.skm", entries)
    with pytest.raises(ValueError, match=message):
        load(path)


def test_oversized_json_member_is_refused_before_reading(saved, tmp_path):
    entries = members(saved)
    entries["manifest.json"] = b" " * (1 << 17) + entries["manifest.json"]  # deflates to almost nothing
    path = tmp_path / "big.skm"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        assert archive.getinfo("manifest.json").compress_size < 1 << 12
    with pytest.raises(ValueError, match="manifest.json declares 131.* bytes, more than a model file holds"):
        load(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(format="pickle"), "its format is 'pickle'"),
        (lambda m: m.update(format_version=2), "format version 2 is not supported.*reads version 1. Upgrade"),
        (lambda m: m.update(format_version="1"), "format version '1' is not supported"),
        (lambda m: m.pop("members"), "unreadable manifest.json"),
    ],
)
def test_bad_manifest_is_refused(edit, message, saved, tmp_path):
    entries = members(saved)
    entries["manifest.json"] = edit_json(entries["manifest.json"], edit)
    with pytest.raises(ValueError, match=message):
        load(write_archive(tmp_path / "m.skm", list(entries.items())))


def test_other_package_version_warns(fitted, saved, tmp_path, digits):
    entries = members(saved)
    entries["manifest.json"] = edit_json(
        entries["manifest.json"], lambda m: m.update(sk_mnist_version="0.0.1")
    )
    with pytest.warns(UserWarning, match="saved with sk_mnist '0.0.1'"):
        restored = load(write_archive(tmp_path / "old.skm", list(entries.items())))
    np.testing.assert_array_equal(restored.predict_proba(digits[2]), fitted.predict_proba(digits[2]))


# Files whose checksums are consistent, as an attacker would make them: the
# checks behind the checksums must hold on their own.
def _set(path, value):
    def edit(tree):
        node = tree
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            _set(["class"], "builtins.eval"),
            "estimator class 'builtins.eval' is not one a model file may hold",
        ),
        (_set(["params", "optimizer"], {"__class__": "os.system"}), "'__class__' with this content"),
        (_set(["params", "predict"], 1), "has no parameter 'predict'"),
        (_set(["params", "dropout"], 7), "dropout"),
        (_set(["state", "secret_"], 1), r"unknown \['secret_'\]"),
        (_set(["state", "classes_inferred_"], {"__pickle__": "gASV"}), "'__pickle__' with this content"),
        (_set(["params", "module__hidden_units"], 10**12), "do not fit the network"),  # never allocated
        (_set(["params", "lr"], [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]), "lr"),
        (_set(["weights"], "7"), "do not fit the network"),
        (lambda tree: tree["state"].pop("image_shape_"), r"misses \['image_shape_'\]"),
    ],
    ids=[
        "foreign-class",
        "foreign-callable",
        "method-name",
        "invalid-param",
        "unknown-state",
        "unknown-tag",
        "huge-network",
        "list-for-float",
        "wrong-weights",
        "missing-state",
    ],
)
def test_consistent_but_hostile_description_is_refused(edit, message, saved, tmp_path):
    entries = members(saved)
    entries["estimator.json"] = edit_json(entries["estimator.json"], edit)
    path = write_archive(tmp_path / "crafted.skm", entries.items(), fix_checksums=True)
    with pytest.raises(ValueError, match=f"invalid model description: .*{message}"):
        load(path)


def test_deeply_nested_json_is_refused(saved, tmp_path):
    entries = members(saved)
    entries["estimator.json"] = b"[" * 100_000 + b"]" * 100_000
    path = write_archive(tmp_path / "deep.skm", entries.items(), fix_checksums=True)
    with pytest.raises(ValueError, match="invalid model description"):
        load(path)


def test_unused_tensors_are_refused(saved, tmp_path):
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    entries = members(saved)
    tensors = st_load(entries["weights.safetensors"])
    entries["weights.safetensors"] = st_save({**tensors, "9/payload": torch.zeros(3)})
    path = write_archive(tmp_path / "extra.skm", entries.items(), fix_checksums=True)
    with pytest.raises(ValueError, match=r"holds tensors no estimator uses: \['9/payload'\]"):
        load(path)


def test_garbage_weights_are_refused(saved, tmp_path):
    entries = members(saved)
    entries["weights.safetensors"] = b"\xff" * 64
    path = write_archive(tmp_path / "garbage.skm", entries.items(), fix_checksums=True)
    with pytest.raises(ValueError, match="unreadable weights.safetensors"):
        load(path)


def test_missing_safetensors_names_the_extra(monkeypatch, saved):
    monkeypatch.setitem(__import__("sys").modules, "safetensors.torch", None)
    expected = r'is needed for sk_mnist.persistence .* pip install "sk_mnist\[persistence\]"'
    with pytest.raises(ImportError, match=expected):
        load(saved)


def test_mutated_files_are_refused_or_load_unchanged(tmp_path_factory):
    # Whatever bytes are flipped, cut or inserted, load raises ValueError or
    # (for bytes the format does not depend on, such as zip timestamps) gives
    # back the very same model; never another exception, never another model.
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    rng = np.random.default_rng(0)
    X, y = rng.integers(0, 256, (20, 16)).astype(np.uint8), np.arange(20) % 2
    clf = MNISTCNNClassifier(module__hidden_units=8, **TINY).fit(X, y)
    path = tmp_path_factory.mktemp("mutations") / "model.skm"
    save(clf, path)
    good, expected = path.read_bytes(), clf.predict_proba(X)
    # Positions near both ends: the local headers, the JSON and the zip directory.
    position = st.one_of(st.integers(0, 300), st.integers(len(good) - 600, len(good) - 1))

    @hypothesis.settings(max_examples=50, deadline=None, database=None, derandomize=True)
    @hypothesis.given(
        at=position, op=st.sampled_from(["flip", "cut", "zero", "insert"]), bit=st.integers(0, 7)
    )
    def check(at, op, bit):
        data = bytearray(good)
        if op == "flip":
            data[at] ^= 1 << bit
        elif op == "cut":
            del data[at:]
        elif op == "zero":
            data[at : at + 4] = bytes(4)
        else:
            data[at:at] = bytes([1 << bit])
        path.write_bytes(bytes(data))
        try:
            restored = load(path)
        except ValueError:
            return
        np.testing.assert_array_equal(restored.predict_proba(X), expected)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a flipped version string only warns
        check()
