import hashlib
import json
import os
import pickle
import re
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import assert_same_weights
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from skorch.callbacks import EpochTimer

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, __version__, make_cnn_ensemble
from sk_mnist.modules import LeNet
from sk_mnist.persistence import load, load_model, save, save_model
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
    assert_same_weights(restored, fitted)


def test_top_level_functions_write_the_same_file(fitted, saved, tmp_path):
    import sk_mnist

    sk_mnist.save(fitted, tmp_path / "by-function.skm")
    assert (tmp_path / "by-function.skm").read_bytes() == saved.read_bytes()
    assert sk_mnist.load is load


def test_file_layout(saved):
    from safetensors.torch import load as load_tensors

    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["estimator.json", "manifest.json", "weights.safetensors"]
        manifest = json.loads(archive.read("manifest.json"))
        tree = json.loads(archive.read("estimator.json"))
        weights = archive.read("weights.safetensors")
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
    # The arrays and the optimizer's tensors share one numbering, from 0 and without gaps.
    numbers = [int(key.split("/")[1]) for key in load_tensors(weights) if not key[0].isdigit()]
    assert len(numbers) > 2 and sorted(numbers) == list(range(len(numbers)))


def test_a_file_without_rehearsal_weights_weighs_its_rehearsed_samples_1(fitted, digits, tmp_path):
    # As files written before sample weights existed hold their buffer.
    X, y, _ = digits
    clf = pickle.loads(pickle.dumps(fitted))
    del clf.rehearsal_sample_weight_
    save(clf, tmp_path / "model.skm")
    restored = load(tmp_path / "model.skm")
    np.testing.assert_array_equal(restored.rehearsal_sample_weight_, np.ones(len(fitted.rehearsal_y_)))
    # partial_fit goes on exactly as on the classifier that has the weights.
    original = pickle.loads(pickle.dumps(fitted))
    for clf in (original, restored):
        clf.partial_fit(X[:50], y[:50])
    np.testing.assert_array_equal(restored.predict_proba(X[:20]), original.predict_proba(X[:20]))


def test_rehearsal_weights_of_zero_and_fractions_are_kept(fitted, tmp_path):
    clf = pickle.loads(pickle.dumps(fitted))
    clf.rehearsal_sample_weight_ = np.linspace(0, 0.9, len(clf.rehearsal_y_))  # from 0, all below 1
    save(clf, tmp_path / "model.skm")
    np.testing.assert_array_equal(
        load(tmp_path / "model.skm").rehearsal_sample_weight_, clf.rehearsal_sample_weight_
    )


def test_values_a_dict_of_labels_cannot_hold_are_refused_where_they_are(fitted, tmp_path):
    for class_weight, where in [
        ({0: object()}, "class_weight[0]"),
        ({(0, object()): 1.0}, "class_weight key (0, "),
    ]:
        clf = pickle.loads(pickle.dumps(fitted)).set_params(class_weight=class_weight)
        with pytest.raises(TypeError) as caught:
            save(clf, tmp_path / "model.skm")
        assert str(caught.value).startswith(f"MNISTCNNClassifier.{where}")
        assert "a model file cannot hold a builtins.object" in str(caught.value)


@pytest.mark.parametrize(
    "name, value",
    [
        ("rehearsal_sample_weight_", np.ones(239)),  # one weight short
        ("rehearsal_sample_weight_", np.full(240, -1.0)),
        ("rehearsal_sample_weight_", np.full(240, np.nan)),
        ("rehearsal_sample_weight_", np.ones(240, dtype=np.int64)),
        ("rehearsal_sample_weight_", "heavy"),
        ("rehearsal_y_", np.zeros((240, 1), dtype=np.int64)),
        ("rehearsal_X_", np.zeros(240)),
    ],
)
def test_a_rehearsal_buffer_that_does_not_match_up_is_refused(fitted, tmp_path, name, value):
    clf = pickle.loads(pickle.dumps(fitted))
    setattr(clf, name, value)
    save(clf, tmp_path / "model.skm")
    with pytest.raises(ValueError) as caught:
        load(tmp_path / "model.skm")
    assert str(caught.value) == (
        f"{tmp_path / 'model.skm'}: invalid model description: estimator.json: rehearsal_X_, "
        "rehearsal_y_ and rehearsal_sample_weight_ must be arrays holding one image, one label and one "
        "non-negative weight per rehearsed sample"
    )


@pytest.mark.parametrize(
    "class_weight",
    [{0: 2.0, 9: 0.5}, {np.int64(3): np.float64(0.0)}, {"0": 1.0}],
    ids=["int", "numpy", "str"],
)
def test_class_weight_dicts_of_any_labels_round_trip(digits, tmp_path, class_weight):
    X, y, _ = digits
    if "0" in class_weight:
        y = y.astype(str)
    clf = MNISTCNNClassifier(class_weight=class_weight, **FAST).fit(X, y)
    save(clf, tmp_path / "model.skm")
    restored = load(tmp_path / "model.skm")
    assert restored.class_weight == class_weight
    assert [type(key) for key in restored.class_weight] == [
        type(key.item() if hasattr(key, "item") else key) for key in class_weight
    ]
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    tree = json.loads(members(tmp_path / "model.skm")["estimator.json"])
    tag = "__dict__" if "0" in class_weight else "__items__"
    assert list(tree["params"]["class_weight"]) == [tag]


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


@pytest.mark.parametrize(
    "shape, image_shape", [((40, 1), (1, 1, 1)), ((40, 4, 16), (1, 4, 16))], ids=["one-pixel", "oblong"]
)
def test_unusual_image_shapes_round_trip(shape, image_shape, tmp_path):
    # The smallest image a fit accepts, and images that are not the square
    # canvas of their pixels: the image-shape check must not refuse what save wrote.
    X = np.random.default_rng(0).random(shape)
    clf = MNISTCNNClassifier(**TINY).fit(X, np.arange(40) % 2)
    save(clf, tmp_path / "model.skm")
    restored = load(tmp_path / "model.skm")
    assert restored.image_shape_ == clf.image_shape_ == image_shape
    assert_same_classifier(restored, clf, X)


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
    # The networks are numbered in the order the tree lists them, and their tensors keyed by number.
    entries = members(tmp_path / "ensemble.skm")
    tree = json.loads(entries["estimator.json"])
    assert [member["__estimator__"]["weights"] for member in tree["state"]["estimators_"]] == ["0", "1"]
    keys = safetensors.torch.load(entries["weights.safetensors"]).keys()
    for number, member in enumerate(ensemble.estimators_):
        expected = {f"{number}/{name}" for name in member.module_.state_dict()}
        assert {key for key in keys if key.startswith(f"{number}/")} == expected


def test_json_members_are_deflated_and_the_weights_stored(saved):
    # Stored, the weights are bounded by the file's size; the JSON members are limited on reading.
    with zipfile.ZipFile(saved) as archive:
        kinds = {info.filename: info.compress_type for info in archive.infolist()}
    assert kinds == {
        "manifest.json": zipfile.ZIP_DEFLATED,
        "estimator.json": zipfile.ZIP_DEFLATED,
        "weights.safetensors": zipfile.ZIP_STORED,
    }


def test_ensemble_with_a_dropped_member_round_trip(digits, tmp_path):
    # "drop" keeps its name in named_estimators_ and takes no fitted member:
    # the members after it keep theirs.
    X, y, X_test = digits
    ensemble = make_cnn_ensemble(3, **TINY).set_params(cnn_1="drop").fit(X, y)
    save(ensemble, tmp_path / "ensemble.skm")
    restored = load(tmp_path / "ensemble.skm")
    assert len(restored.estimators_) == 2
    assert restored.named_estimators_["cnn_1"] == "drop"
    assert restored.named_estimators_["cnn_0"] is restored.estimators_[0]
    assert restored.named_estimators_["cnn_2"] is restored.estimators_[1]
    np.testing.assert_array_equal(restored.predict_proba(X_test), ensemble.predict_proba(X_test))


def test_distilled_student_round_trip(fitted, digits, tmp_path):
    X, y, X_test = digits
    student = DistilledCNNClassifier(fitted, **TINY).fit(X, y)
    save(student, tmp_path / "student.skm")
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


def test_numpy_scalars_round_trip_as_python_numbers(fitted, tmp_path):
    # JSON has no numpy types: a parameter or a history entry given as a numpy
    # scalar is written, and comes back, as the Python number it stands for.
    clf = pickle.loads(pickle.dumps(fitted))
    clf.max_epochs = np.int64(2)
    clf.history_.record("score", np.float32(0.25))
    clf.history_.record("count", np.int64(3))
    save(clf, tmp_path / "model.skm")
    restored = load(tmp_path / "model.skm")
    assert restored.max_epochs == 2 and type(restored.max_epochs) is int
    assert restored.history_[-1, "score"] == 0.25 and type(restored.history_[-1, "score"]) is float
    assert restored.history_[-1, "count"] == 3 and type(restored.history_[-1, "count"]) is int


def test_arrays_of_up_to_1024_numbers_are_written_in_the_json(fitted, tmp_path):
    # 16 rows of 64 pixels: exactly the most values the JSON holds (the
    # 240-row buffer goes with the weights, as test_file_layout shows).
    clf = pickle.loads(pickle.dumps(fitted))
    clf.rehearsal_X_, clf.rehearsal_y_ = fitted.rehearsal_X_[:16], fitted.rehearsal_y_[:16]
    clf.rehearsal_sample_weight_ = fitted.rehearsal_sample_weight_[:16]
    save(clf, tmp_path / "model.skm")
    node = json.loads(members(tmp_path / "model.skm")["estimator.json"])["state"]["rehearsal_X_"]
    assert node["__ndarray__"].keys() == {"dtype", "shape", "data"}
    assert (node["__ndarray__"]["shape"], len(node["__ndarray__"]["data"])) == ([16, 64], 1024)
    restored = load(tmp_path / "model.skm")
    np.testing.assert_array_equal(restored.rehearsal_X_, clf.rehearsal_X_)
    assert restored.rehearsal_X_.dtype == clf.rehearsal_X_.dtype


def test_bulk_arrays_are_stored_in_native_byte_order(fitted, tmp_path):
    # A buffer in the other byte order (torch takes only the native one).
    clf = pickle.loads(pickle.dumps(fitted))
    clf.rehearsal_X_ = fitted.rehearsal_X_.astype(fitted.rehearsal_X_.dtype.newbyteorder("S"))
    save(clf, tmp_path / "model.skm")
    restored = load(tmp_path / "model.skm")
    np.testing.assert_array_equal(restored.rehearsal_X_, fitted.rehearsal_X_)
    assert restored.rehearsal_X_.dtype.str == fitted.rehearsal_X_.dtype.str  # native


# -- what save refuses ----------------------------------------------------------


TRUSTED_USE = "Use pickle or joblib for it (trusted use only)."
HOLDS_ESTIMATORS = (
    "a model file can hold MNISTCNNClassifier, DistilledCNNClassifier, the sk_mnist.preprocessing "
    "transformers, and Pipeline or VotingClassifier of them; not "
)
HOLDS_VALUES = (
    "it holds JSON values, numpy arrays, torch optimizers and the architectures of sk_mnist.modules."
)
CALLBACK_HINT = " Callbacks act only during fit: set_params(callbacks=None) before saving."


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: make_pipeline(PixelScaler(), LogisticRegression()),
            (
                f"Pipeline.steps[1][1]: {HOLDS_ESTIMATORS}sklearn.linear_model._logistic.LogisticRegression. "
                f"{TRUSTED_USE}"
            ),
        ),
        (
            lambda: MNISTCNNClassifier(callbacks=[EpochTimer()], **TINY),
            (
                "MNISTCNNClassifier.callbacks[0]: a model file cannot hold a skorch.callbacks.logging.EpochTimer; "
                f"{HOLDS_VALUES}{CALLBACK_HINT} {TRUSTED_USE}"
            ),
        ),
        (
            # The hint reads the last name of a nested location.
            lambda: make_pipeline(PixelScaler(), MNISTCNNClassifier(callbacks=[EpochTimer()], **TINY)),
            (
                "Pipeline.steps[1][1].callbacks[0]: a model file cannot hold a "
                f"skorch.callbacks.logging.EpochTimer; {HOLDS_VALUES}{CALLBACK_HINT} {TRUSTED_USE}"
            ),
        ),
        (
            lambda: MNISTCNNClassifier(optimizer=type("MyAdam", (torch.optim.Adam,), {}), **TINY),
            (
                "MNISTCNNClassifier.optimizer: a model file names only torch's optimizers and the architectures "
                f"of sk_mnist.modules.ARCHITECTURES, not test_persistence.MyAdam. {TRUSTED_USE}"
            ),
        ),
        (
            lambda: MNISTCNNClassifier(
                max_epochs=1, early_stopping=False, random_state=np.random.RandomState(0)
            ),
            (
                "MNISTCNNClassifier.random_state: a model file cannot hold a numpy.random.mtrand.RandomState; "
                f"{HOLDS_VALUES} {TRUSTED_USE}"
            ),
        ),
        (
            lambda: DistilledCNNClassifier(KNeighborsClassifier(), **TINY),
            (
                f"DistilledCNNClassifier.teacher: {HOLDS_ESTIMATORS}"
                f"sklearn.neighbors._classification.KNeighborsClassifier. {TRUSTED_USE}"
            ),
        ),
    ],
    ids=[
        "foreign-estimator",
        "callbacks",
        "nested-callbacks",
        "custom-optimizer",
        "RandomState",
        "foreign-teacher",
    ],
)
def test_save_refuses_what_it_cannot_restore(make, message, digits, tmp_path):
    X, y, _ = digits
    est = make().fit(X[:60], y[:60])
    with pytest.raises(TypeError) as refused:
        save(est, tmp_path / "model.skm")
    assert str(refused.value) == message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "where, plant",
    [
        ("callbacks[0]", lambda clf: clf.set_params(callbacks=({1, 2},))),
        ("callbacks['timer']", lambda clf: clf.set_params(callbacks={"timer": {1, 2}})),
        ("optimizer_[0]['note']", lambda clf: clf.optimizer_.param_groups[0].update(note={1, 2})),
        ("optimizer_['note']", lambda clf: next(iter(clf.optimizer_.state.values())).update(note={1, 2})),
    ],
    ids=["parameter-tuple", "parameter-dict", "optimizer-param-group", "optimizer-state"],
)
def test_save_names_where_a_nested_value_is(where, plant, fitted, tmp_path):
    clf = pickle.loads(pickle.dumps(fitted))
    plant(clf)
    hint = CALLBACK_HINT if where.startswith("callbacks") else ""
    with pytest.raises(TypeError) as refused:
        save(clf, tmp_path / "model.skm")
    assert str(refused.value) == (
        f"MNISTCNNClassifier.{where}: a model file cannot hold a builtins.set; {HOLDS_VALUES}{hint} {TRUSTED_USE}"
    )


def test_save_refuses_unknown_fitted_attributes(fitted, tmp_path):
    # Anything the format does not know would be silently lost: refuse instead.
    clf = pickle.loads(pickle.dumps(fitted))
    clf.calibration_ = 1.0
    with pytest.raises(TypeError) as refused:
        save(clf, tmp_path / "model.skm")
    assert str(refused.value) == (
        "MNISTCNNClassifier: MNISTCNNClassifier holds attributes ['calibration_'] that the model format "
        "does not cover; use pickle or joblib for it (trusted use only)."
    )


@pytest.mark.parametrize(
    "value, message",
    [
        (np.array([1j, 2j]), "a model file cannot hold arrays of dtype complex128."),
        (
            np.array(["px0", None], dtype=object),
            "a model file holds object arrays only of strings and numbers.",
        ),
    ],
    ids=["complex", "object-with-None"],
)
def test_save_refuses_arrays_it_cannot_restore(value, message, digits, tmp_path):
    scaler = PixelScaler().fit(digits[0])
    scaler.feature_names_in_ = value
    with pytest.raises(TypeError) as refused:
        save(scaler, tmp_path / "model.skm")
    assert str(refused.value) == f"PixelScaler.feature_names_in_: {message}"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "value, kind", [({1, 2}, "set"), (np.datetime64("2024-01-01"), "datetime64")], ids=["set", "datetime64"]
)
def test_save_refuses_history_entries_json_cannot_hold(value, kind, fitted, tmp_path):
    clf = pickle.loads(pickle.dumps(fitted))
    clf.history_.record("note", value)
    with pytest.raises(TypeError) as refused:
        save(clf, tmp_path / "model.skm")
    assert str(refused.value) == (
        f"MNISTCNNClassifier.history_: a model file cannot hold a {kind} in the training history."
    )


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


def crafted(saved, edit, path):
    """Write ``saved`` with ``edit`` applied to its description, checksums made to match."""
    entries = members(saved)
    entries["estimator.json"] = edit_json(entries["estimator.json"], edit)
    return write_archive(path, entries.items(), fix_checksums=True)


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
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: {member} fails its sha256 check against manifest.json: the file was damaged or "
        "modified after it was saved."
    )


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


PICKLE = (
    "not an sk_mnist model file: it looks like a pickle, which this function never loads (unpickling "
    "runs code from the file); open it with joblib or pickle only if you trust its source."
)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_is_refused_unopened(protocol, tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.skm"
    path.write_bytes(pickle.dumps(_Marker(marker), protocol=protocol))
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == f"{path}: {PICKLE}"
    assert not marker.exists()


def test_joblib_file_is_refused(fitted, tmp_path):
    joblib = pytest.importorskip("joblib")
    joblib.dump(fitted, tmp_path / "model.joblib")  # a pickle, as far as load can tell
    with pytest.raises(ValueError) as refused:
        load(tmp_path / "model.joblib")
    assert str(refused.value) == f"{tmp_path / 'model.joblib'}: {PICKLE}"


JSON, WEIGHTS = ["estimator.json", "manifest.json"], "weights.safetensors"


@pytest.mark.parametrize(
    "change, names",
    [
        (lambda e: e.append(("notes.txt", b"hi")), [*JSON, "notes.txt", WEIGHTS]),
        (
            lambda e: e.__setitem__(1, ("../estimator.json", e[1][1])),
            ["../estimator.json", "manifest.json", WEIGHTS],
        ),
        (lambda e: e.append(e[0]), [*JSON, "manifest.json", WEIGHTS]),  # a duplicate manifest.json
        (lambda e: e.pop(), JSON),
        # The message lists the first ten names, sorted.
        (
            lambda e: e.extend((f"extra/{i:02}", b"") for i in range(10)),
            ["estimator.json", *(f"extra/{i:02}" for i in range(9))],
        ),
    ],
    ids=["extra-member", "path-traversal", "duplicate", "missing", "many-members"],
)
def test_unexpected_members_are_refused(change, names, saved, tmp_path):
    entries = list(members(saved).items())
    change(entries)
    path = write_archive(tmp_path / "odd.skm", entries)
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: not an sk_mnist model file: it holds the members {names}, where a model file holds "
        "exactly manifest.json, estimator.json and weights.safetensors."
    )


def write_padded_manifest(saved, size, path):
    """Write ``saved`` with its manifest padded by leading spaces (still JSON) to ``size`` bytes, deflated."""
    entries = members(saved)
    entries["manifest.json"] = entries["manifest.json"].rjust(size)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            stored = name == "weights.safetensors"
            archive.writestr(name, data, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
        assert archive.getinfo("manifest.json").compress_size < 1 << 12  # deflates to almost nothing
    return path


@pytest.mark.parametrize("size", [(1 << 16) + 1, 1 << 17])
def test_oversized_json_member_is_refused_before_reading(size, saved, tmp_path):
    path = write_padded_manifest(saved, size, tmp_path / "big.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: manifest.json declares {size} bytes, more than a model file holds."
    )


def test_json_member_of_the_largest_size_is_read(fitted, saved, tmp_path, digits):
    # manifest.json may decompress to 64 KiB, and no more.
    restored = load(write_padded_manifest(saved, 1 << 16, tmp_path / "big.skm"))
    np.testing.assert_array_equal(restored.predict_proba(digits[2]), fitted.predict_proba(digits[2]))


def with_flag_bits(path, member, bits):
    """Set general-purpose flag ``bits`` (0x1: encrypted) on ``member`` of the zip at ``path``."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    # The local file header and the central directory entry of the member.
    for signature, flags, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        at = data.find(signature)
        while data[at + name_at : at + name_at + len(name)] != name:
            at = data.find(signature, at + 1)
            assert at >= 0, f"no {signature} header for {member}"
        data[at + flags] |= bits
    path.write_bytes(bytes(data))
    return path


def write_compressed(saved, compression, path):
    """Write ``saved`` with each member compressed as ``compression`` has it (stored if absent)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members(saved).items():
            archive.writestr(name, data, compression.get(name, zipfile.ZIP_STORED))
    return path


@pytest.mark.parametrize(
    "write, member",
    [
        (
            lambda saved, path: write_compressed(saved, {WEIGHTS: zipfile.ZIP_DEFLATED}, path),
            WEIGHTS,
        ),
        (
            lambda saved, path: write_compressed(saved, {"manifest.json": zipfile.ZIP_BZIP2}, path),
            "manifest.json",
        ),
        (
            lambda saved, path: with_flag_bits(write_compressed(saved, {}, path), "estimator.json", 0x1),
            "estimator.json",
        ),
    ],
    ids=["deflated-weights", "bzip2", "encrypted"],
)
def test_members_compressed_or_encrypted_otherwise_are_refused(write, member, saved, tmp_path):
    # The weights are stored, so that the file's size bounds them; the JSON
    # members stored or deflated; nothing is encrypted.
    path = write(saved, tmp_path / "odd.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: {member} is encrypted or compressed in a way a model file never is."
    )


NOT_OURS = "not an sk_mnist model file"
KEYS = ["estimator", "format", "format_version", "members", "sk_mnist_version"]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(format="pickle"), f"{NOT_OURS}: its format is 'pickle', not 'sk_mnist-model'."),
        (
            lambda m: m.update(format_version=2),
            (
                f"model format version 2 is not supported: sk_mnist {__version__} reads version 1. "
                "Upgrade sk_mnist to read it."
            ),
        ),
        (
            lambda m: m.update(format_version="1"),
            f"model format version '1' is not supported: sk_mnist {__version__} reads version 1.",
        ),
        (
            lambda m: m.pop("members"),
            (
                f"{NOT_OURS}: unreadable manifest.json (manifest.json has keys "
                f"{[key for key in KEYS if key != 'members']}; expected {KEYS})."
            ),
        ),
        (
            lambda m: m.update(members=[]),
            (
                "estimator.json fails its sha256 check against manifest.json: the file was damaged or "
                "modified after it was saved."
            ),
        ),
    ],
    ids=["format", "newer-version", "string-version", "no-members", "members-list"],
)
def test_bad_manifest_is_refused(edit, message, saved, tmp_path):
    entries = members(saved)
    entries["manifest.json"] = edit_json(entries["manifest.json"], edit)
    path = write_archive(tmp_path / "m.skm", list(entries.items()))
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == f"{path}: {message}"


def _prepend(entry):
    """An edit of a JSON object's bytes that writes ``entry`` before its first key."""
    return lambda data: b"{" + entry + b", " + data.lstrip()[1:]


@pytest.mark.parametrize(
    "member, edit, message",
    [
        # Two readers could take either of two values of one key.
        (
            "manifest.json",
            _prepend(b'"format": "pickle"'),
            f"{NOT_OURS}: unreadable manifest.json (manifest.json repeats a key).",
        ),
        (
            "estimator.json",
            _prepend(b'"class": "builtins.eval"'),
            "invalid model description: estimator.json repeats a key",
        ),
        (
            "manifest.json",
            lambda data: b"[" + data + b"]",
            f"{NOT_OURS}: unreadable manifest.json (manifest.json must be a JSON object).",
        ),
    ],
    ids=["manifest-repeats-a-key", "description-repeats-a-key", "manifest-list"],
)
def test_json_members_are_read_strictly(member, edit, message, saved, tmp_path):
    entries = members(saved)
    entries[member] = edit(entries[member])
    path = write_archive(tmp_path / "m.skm", entries.items(), fix_checksums=member != "manifest.json")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == f"{path}: {message}"


def test_other_package_version_warns(fitted, saved, tmp_path, digits):
    entries = members(saved)
    entries["manifest.json"] = edit_json(
        entries["manifest.json"], lambda m: m.update(sk_mnist_version="0.0.1")
    )
    path = write_archive(tmp_path / "old.skm", list(entries.items()))
    with pytest.warns(UserWarning) as record:
        restored = load(path)
    assert [str(w.message) for w in record] == [
        (
            f"{path} was saved with sk_mnist '0.0.1' and is loaded with sk_mnist {__version__}; the format "
            "is the same, but the networks' code may differ."
        )
    ]
    # It points at the caller of load, not at sk_mnist's own code (mutation
    # testing wraps each function in more frames, which the warning then
    # names: still outside the package).
    assert record[0].filename == __file__ or "mutmut" in record[0].filename
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


FOREIGN = "with this content is not a value a model file may hold"
EVAL = "estimator class 'builtins.eval' is not one a model file may hold"
# The tensors that differ are listed (see test_weights_of_another_architecture_are_named).
MISFIT = (
    "estimator.json: the stored weights do not fit the network its parameters describe "
    "(tensors that differ in name, shape or dtype: [...])."
)
DEEP = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
PICKLED = {"__pickle__": "gASV"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set(["class"], "builtins.eval"), f"estimator.json: {EVAL}"),
        (
            _set(["params", "optimizer"], {"__class__": "os.system"}),
            f"estimator.json.params.optimizer: '__class__' {FOREIGN}",
        ),
        (_set(["params", "predict"], 1), "estimator.json: MNISTCNNClassifier has no parameter 'predict'"),
        (_set(["params", "kwargs"], 1), "estimator.json: MNISTCNNClassifier has no parameter 'kwargs'"),
        (
            _set(["params", "dropout"], 7),
            (
                "The 'dropout' parameter of MNISTCNNClassifier must be a float in the range [0.0, 1.0). "
                "Got 7 instead."
            ),
        ),
        (_set(["state", "secret_"], 1), "estimator.json: fitted state has unknown ['secret_'] or misses []"),
        (
            _set(["state", "classes_inferred_"], PICKLED),
            f"estimator.json.state.classes_inferred_: '__pickle__' {FOREIGN}",
        ),
        (_set(["params", "module__hidden_units"], 10**12), MISFIT),  # never allocated
        (
            _set(["params", "lr"], DEEP),
            (
                "The 'lr' parameter of MNISTCNNClassifier must be a float in the range (0.0, inf). "
                f"Got {DEEP} instead."
            ),
        ),
        (_set(["weights"], "7"), MISFIT),
        (
            lambda tree: tree["state"].pop("image_shape_"),
            "estimator.json: fitted state has unknown [] or misses ['image_shape_']",
        ),
        (
            lambda tree: tree.pop("state"),
            (
                "estimator.json has keys ['class', 'optimizer', 'params', 'weights']; "
                "expected ['class', 'params', 'state']"
            ),
        ),
        (_set(["params"], []), "estimator.json.params must be a JSON object"),
        (_set(["state"], []), "estimator.json.state must be a JSON object"),
        (
            _set(["params", "lr"], {"__tuple__": [], "__dict__": {}}),
            "estimator.json.params.lr: a JSON object must be a single tagged value",
        ),
        (_set(["params", "lr"], [PICKLED]), f"estimator.json.params.lr[0]: '__pickle__' {FOREIGN}"),
        (
            _set(["state", "image_shape_"], {"__tuple__": [1, PICKLED, 8]}),
            f"estimator.json.state.image_shape_[1]: '__pickle__' {FOREIGN}",
        ),
        (
            _set(["params", "checkpoint_dir"], {"__path__": []}),
            f"estimator.json.params.checkpoint_dir: '__path__' {FOREIGN}",
        ),
        (
            _set(
                ["params", "optimizer"],
                {"__estimator__": {"class": "builtins.eval", "params": {}, "state": {}}},
            ),
            f"estimator.json.params.optimizer: {EVAL}",
        ),
    ],
    ids=[
        "foreign-class",
        "foreign-callable",
        "method-name",
        "kwargs-name",
        "invalid-param",
        "unknown-state",
        "unknown-tag",
        "huge-network",
        "list-for-float",
        "wrong-weights",
        "missing-state",
        "no-state",
        "params-list",
        "state-list",
        "two-tags",
        "foreign-in-list",
        "foreign-in-tuple",
        "path-list",
        "foreign-nested-class",
    ],
)
def test_consistent_but_hostile_description_is_refused(edit, message, saved, tmp_path):
    path = crafted(saved, edit, tmp_path / "crafted.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    refusal = re.sub(r"dtype: \[.*\]\)\.$", "dtype: [...]).", str(refused.value))
    assert refusal == f"{path}: invalid model description: {message}"


def test_test_time_augmentation_other_than_a_bool_is_refused(saved, tmp_path):
    path = crafted(saved, _set(["params", "test_time_augmentation"], 1), tmp_path / "crafted.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value).startswith(
        f"{path}: invalid model description: The 'test_time_augmentation' parameter of MNISTCNNClassifier "
        "must be an instance of 'bool'"
    )


def test_kernel_sizes_the_network_cannot_stack_are_refused(digits, tmp_path):
    # A routed parameter is checked by the network it builds.
    clf = MNISTCNNClassifier(
        architecture="deep", module__kernel_sizes=(3, 3, 3), max_epochs=1, random_state=0
    )
    save(clf.fit(digits[0][:100], digits[1][:100]), tmp_path / "deep.skm")
    assert load(tmp_path / "deep.skm").get_params()["module__kernel_sizes"] == (3, 3, 3)
    path = crafted(
        tmp_path / "deep.skm", _set(["params", "module__kernel_sizes"], [23, 3, 3]), tmp_path / "c.skm"
    )
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: invalid model description: estimator.json: "
        "kernel_sizes must be three positive odd ints, the first at most 21; got [23, 3, 3]"
    )


def test_invalid_parameter_of_a_transformer_is_refused(digits, tmp_path):
    # Checked as the estimator's own fit checks it, whatever its class.
    save(PixelScaler().fit(digits[0]), tmp_path / "scaler.skm")
    path = crafted(tmp_path / "scaler.skm", _set(["params", "max_value"], -1.0), tmp_path / "crafted.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: invalid model description: The 'max_value' parameter of PixelScaler must be a float "
        "in the range (0.0, inf). Got -1.0 instead."
    )


PAIRS = "estimator.json.optimizer: state must be a list of [parameter index, state] pairs"


def _foreign_step(tree):
    tree["optimizer"]["state"][0][1]["__dict__"]["step"] = {"__class__": "os.system"}


def _moment(value):
    """An edit that replaces Adam's first moment of the first parameter with ``value``."""
    return _set(["optimizer", "state", 0, 1, "__dict__", "exp_avg"], value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda tree: tree.pop("weights"), "estimator.json: a fitted network needs a 'weights' entry"),
        (lambda tree: tree.pop("optimizer"), "estimator.json.optimizer must be a JSON object"),
        (_set(["optimizer", "state"], {}), PAIRS),
        (_set(["optimizer", "state"], [0]), PAIRS),
        (_set(["optimizer", "state"], [[0]]), PAIRS),
        (_set(["optimizer", "state"], [[0, {}, 1]]), PAIRS),
        (_set(["optimizer", "state"], [["0", {}]]), PAIRS),
        (_foreign_step, f"estimator.json.optimizer.step: '__class__' {FOREIGN}"),
        (
            _set(["optimizer", "param_groups"], {"__class__": "os.system"}),
            f"estimator.json.optimizer: '__class__' {FOREIGN}",
        ),
        # The optimizer's tensors are "tensors/<n>": not the arrays', nor the networks'.
        (_moment({"__tensor__": "arrays/0"}), f"estimator.json.optimizer.exp_avg: '__tensor__' {FOREIGN}"),
        (
            _moment({"__tensor__": "0/network.features.0.weight"}),
            f"estimator.json.optimizer.exp_avg: '__tensor__' {FOREIGN}",
        ),
        (
            _moment({"__tensor__": "tensors/99"}),
            "estimator.json.optimizer.exp_avg: no stored tensor 'tensors/99'",
        ),
    ],
    ids=[
        "no-weights",
        "no-optimizer",
        "state-mapping",
        "bare-index",
        "short-pair",
        "long-triple",
        "string-index",
        "foreign-state",
        "foreign-groups",
        "array-as-moment",
        "weights-as-moment",
        "absent-moment",
    ],
)
def test_hostile_network_entries_are_refused_where_they_are(edit, message, saved, tmp_path):
    # The whole message: it names the file, then where in the description the fault lies.
    path = crafted(saved, edit, tmp_path / "crafted.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == f"{path}: invalid model description: {message}"


def test_weights_of_another_architecture_are_named(fitted, saved, digits, tmp_path):
    # The parameters say "lenet", the tensors are the default network's: the
    # message lists the first five tensors, sorted, whose name, shape or dtype
    # differ between the two networks (built here by fitting each).
    X, y, _ = digits
    lenet = MNISTCNNClassifier(architecture="lenet", **TINY).fit(X, y)
    described = {k: (t.dtype, t.shape) for k, t in lenet.module_.state_dict().items()}
    stored = {k: (t.dtype, t.shape) for k, t in fitted.module_.state_dict().items()}
    differ = sorted(k for k in described.keys() | stored.keys() if described.get(k) != stored.get(k))
    assert len(differ) > 5 and described.keys() - stored.keys() and stored.keys() - described.keys()
    path = crafted(saved, _set(["params", "architecture"], "lenet"), tmp_path / "crafted.skm")
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == (
        f"{path}: invalid model description: estimator.json: the stored weights do not fit the network "
        f"its parameters describe (tensors that differ in name, shape or dtype: {differ[:5]})."
    )


def test_deeply_nested_json_is_refused(saved, tmp_path):
    entries = members(saved)
    entries["estimator.json"] = b"[" * 100_000 + b"]" * 100_000
    path = write_archive(tmp_path / "deep.skm", entries.items(), fix_checksums=True)
    with pytest.raises(ValueError, match="invalid model description"):
        load(path)


@pytest.mark.parametrize(
    "extra, named",
    [
        (["9/payload"], ["9/payload"]),
        ([f"9/payload{i}" for i in range(7)], [f"9/payload{i}" for i in range(5)]),
    ],
    ids=["one", "seven"],  # the message names the first five, sorted
)
def test_unused_tensors_are_refused(extra, named, saved, tmp_path):
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    entries = members(saved)
    tensors = st_load(entries["weights.safetensors"])
    entries["weights.safetensors"] = st_save({**tensors, **{key: torch.zeros(3) for key in extra}})
    path = write_archive(tmp_path / "extra.skm", entries.items(), fix_checksums=True)
    with pytest.raises(ValueError) as refused:
        load(path)
    assert str(refused.value) == f"{path}: weights.safetensors holds tensors no estimator uses: {named}."


def test_garbage_weights_are_refused(saved, tmp_path):
    entries = members(saved)
    entries["weights.safetensors"] = b"\xff" * 64
    path = write_archive(tmp_path / "garbage.skm", entries.items(), fix_checksums=True)
    with pytest.raises(ValueError) as refused:
        load(path)
    # Then what safetensors says of it.
    assert str(refused.value).startswith(f"{path}: unreadable weights.safetensors: ")


@pytest.mark.parametrize("action", ["save", "load"])
def test_missing_safetensors_names_the_extra(action, monkeypatch, fitted, saved, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "safetensors.torch", None)
    with pytest.raises(ImportError) as refused:
        save(fitted, tmp_path / "new.skm") if action == "save" else load(saved)
    assert str(refused.value) == (
        "safetensors.torch is needed for sk_mnist.persistence but is not installed; "
        'install it with: pip install "sk_mnist[persistence]"'
    )
    assert not (tmp_path / "new.skm").exists()


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


# -- save_model / load_model: the format a path's suffix names -------------------


def test_a_skm_path_is_this_modules_format(fitted, digits, tmp_path):
    _, _, X_new = digits
    save_model(fitted, tmp_path / "cnn.skm")
    assert zipfile.is_zipfile(tmp_path / "cnn.skm")
    for restored in (load_model(tmp_path / "cnn.skm"), load(tmp_path / "cnn.skm")):
        np.testing.assert_array_equal(restored.predict_proba(X_new), fitted.predict_proba(X_new))


@pytest.fixture(scope="module")
def forest(digits):
    from sklearn.ensemble import RandomForestClassifier

    X, y, _ = digits
    # Types outside skops' own trusted list: the package's transformer and the trees.
    return make_pipeline(Deskewer(), RandomForestClassifier(n_estimators=3, random_state=0)).fit(X, y)


def test_a_skops_path_is_skops_format_with_the_packages_trusted_types(forest, digits, tmp_path):
    skops_io = pytest.importorskip("skops.io")
    _, _, X_new = digits
    path = tmp_path / "forest.skops"
    save_model(forest, path)
    assert sorted(skops_io.get_untrusted_types(file=path)) == [
        "sk_mnist.preprocessing.Deskewer",
        "sklearn.tree._tree.Tree",
    ]
    np.testing.assert_array_equal(load_model(path).predict_proba(X_new), forest.predict_proba(X_new))
    with pytest.raises(
        TypeError, match=r"^Pipeline.steps\[1\]\[1\]: a model file can hold MNISTCNNClassifier"
    ):
        save_model(forest, tmp_path / "forest.skm")
    assert not (tmp_path / "forest.skm").exists()


def test_a_skops_file_naming_an_untrusted_function_is_refused_unloaded(tmp_path, monkeypatch):
    skops_io = pytest.importorskip("skops.io")
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "hostile.skops"
    skops_io.dump(make_pipeline(FunctionTransformer(os.system), FunctionTransformer(os.getcwd)), path)
    monkeypatch.setattr(skops_io, "load", lambda *args, **kwargs: pytest.fail("loaded"))
    with pytest.raises(ValueError) as caught:
        load_model(path)
    assert str(caught.value) == "it holds types that sk-mnist does not load: posix.getcwd, posix.system"


class _NoSkops:
    """An import hook under which skops cannot be imported, as where it is not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "skops":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@pytest.mark.parametrize("use", ["save", "load"])
def test_skops_files_without_skops_name_the_extra_to_install(forest, tmp_path, monkeypatch, use):
    for name in [name for name in sys.modules if name.split(".")[0] == "skops"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoSkops(), *sys.meta_path])
    path = tmp_path / "forest.skops"
    with pytest.raises(ImportError) as caught:
        save_model(forest, path) if use == "save" else load_model(path)
    assert str(caught.value) == (
        'skops is needed for the .skops model files but is not installed; install it with: pip install "sk_mnist[cli]"'
    )
    assert not path.exists()


@pytest.mark.parametrize("name", ["model.joblib", "model.pkl", "model"])
def test_any_other_path_is_a_pickle_read_only_when_trusted(forest, digits, tmp_path, monkeypatch, name):
    import joblib

    _, _, X_new = digits
    path = tmp_path / name
    save_model(forest, path)
    np.testing.assert_array_equal(joblib.load(path).predict(X_new), forest.predict(X_new))
    with monkeypatch.context() as patched:
        patched.setattr(joblib, "load", lambda *args: pytest.fail("unpickled"))
        with pytest.raises(ValueError) as caught:
            load_model(path)
    assert str(caught.value) == (
        "it is read as a pickle (its suffix is not .skm or .skops), and loading a pickle runs any code it "
        "holds; pass --trust-pickle only if you trust its source"
    )
    np.testing.assert_array_equal(load_model(path, trust_pickle=True).predict(X_new), forest.predict(X_new))


@pytest.mark.parametrize("suffix, module", [(".skops", "skops.io"), (".joblib", "joblib")])
def test_a_save_model_failing_midway_keeps_the_file_it_would_replace(
    forest, tmp_path, monkeypatch, suffix, module
):
    writer = pytest.importorskip(module)

    def disk_full(model, fh):
        fh.write(b"half a model")
        raise OSError("No space left on device")

    monkeypatch.setattr(writer, "dump", disk_full)
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"the user's earlier model")
    with pytest.raises(OSError, match="No space left on device"):
        save_model(forest, path)
    assert path.read_bytes() == b"the user's earlier model"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


DATA = Path(__file__).parent / "data"


def test_file_written_by_sk_mnist_0_1_0_still_loads():
    # Written by sk_mnist 0.1.0 (before the persistence package was split into
    # its container and tree): a deskewing pipeline whose classifier (routed
    # module__ parameters) went on with partial_fit, so that the file holds
    # Adam's moments and a rehearsal buffer too.
    X, y = load_digits(return_X_y=True)
    pipe = load(DATA / "pipeline-0.1.0.skm")
    # The probabilities as saved beside the file (float32, as the network computes them).
    expected = np.load(DATA / "pipeline-0.1.0-proba.npy")
    np.testing.assert_array_equal(pipe.predict_proba(X[300:340]).astype(np.float32), expected)
    clf = pipe[-1]
    assert clf.get_params()["module__widths"] == (2, 3)
    assert clf.rehearsal_X_.shape == (20, 64) and clf.n_samples_seen_ == 260
    assert len(clf.optimizer_.state_dict()["state"]) == len(list(clf.module_.parameters()))
