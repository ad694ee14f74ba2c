"""test_time_augmentation: predictions average the probabilities of fixed views of each image."""

import copy
import math
import sys

import numpy as np
import pytest
import torch
from conftest import assert_same_weights
from sklearn.utils._param_validation import InvalidParameterError

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, load, save
from sk_mnist._checkpoint import fingerprints
from sk_mnist.modules import TTA_VIEWS, output_layer, tta_views

PARAMS = {"max_epochs": 1, "batch_size": 128, "random_state": 0}


@pytest.fixture(scope="module")
def data(small_mnist):
    X, y, X_test, y_test = small_mnist
    return X[:600], y[:600], X_test[:300], y_test[:300]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return MNISTCNNClassifier(**PARAMS).fit(X, y)


def averaging(clf):
    """A copy of a fitted classifier that averages over the views."""
    return copy.deepcopy(clf).set_params(test_time_augmentation=True)


def test_off_by_default():
    assert MNISTCNNClassifier().test_time_augmentation is False
    assert DistilledCNNClassifier().test_time_augmentation is False


def test_probabilities_are_the_mean_over_the_image_and_its_views(fitted, data):
    X_test = data[2]
    clf = averaging(fitted)
    plain = fitted.predict_proba(X_test)
    averaged = clf.predict_proba(X_test)
    # By hand: the network's probabilities of each view, in evaluation mode, averaged.
    with torch.no_grad():
        images = clf.module_.view(torch.as_tensor(X_test, device=clf.device))
        expected = np.mean(
            [torch.softmax(clf.module_[1:](view).double(), 1).cpu().numpy() for view in tta_views(images)],
            axis=0,
        )
    np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(averaged.sum(axis=1), 1, atol=1e-12)
    assert not np.allclose(averaged, plain, atol=1e-3)
    assert np.array_equal(clf.predict(X_test), clf.classes_[averaged.argmax(1)])
    # Switched off again, the network predicts as before.
    assert np.array_equal(clf.set_params(test_time_augmentation=False).predict_proba(X_test), plain)


def test_a_subset_is_predicted_as_within_the_whole(fitted, data):
    X_test = data[2]
    clf = averaging(fitted)
    whole = clf.predict_proba(X_test)
    # Rows from the first evaluation batch, and rows across its end.
    assert np.array_equal(clf.predict_proba(X_test[:7]), whole[:7])
    assert np.array_equal(clf.predict_proba(X_test[250:262]), whole[250:262])


def test_training_and_its_validation_do_not_depend_on_it(data):
    X, y, _, _ = data
    params = {**PARAMS, "max_epochs": 2, "early_stopping": True}
    a = MNISTCNNClassifier(**params).fit(X, y)
    b = MNISTCNNClassifier(test_time_augmentation=True, **params).fit(X, y)
    for key in ("train_loss", "valid_loss", "valid_acc"):
        assert a.history[:, key] == b.history[:, key], key
    assert_same_weights(a, b)
    # So a checkpoint written with it resumes without it, and the other way round.
    data = (torch.zeros(3), torch.zeros(3), torch.ones(3))
    assert fingerprints(a, *data) == fingerprints(b, *data)


def test_the_distilled_student_averages_its_predictions_too(lenet_teacher, data):
    X, y, X_test, _ = data
    student = DistilledCNNClassifier(lenet_teacher, **PARAMS).fit(X, y)
    averaged = averaging(student).predict_proba(X_test)
    assert not np.allclose(averaged, student.predict_proba(X_test), atol=1e-3)
    np.testing.assert_allclose(averaged.sum(axis=1), 1, atol=1e-12)
    # The output biases are fitted to the network's own logits, whatever the setting.
    plain = copy.deepcopy(student).fit_output_bias(X[:100], y[:100])
    views = averaging(student).fit_output_bias(X[:100], y[:100])
    assert torch.equal(output_layer(plain.module_.network).bias, output_layer(views.module_.network).bias)


def centroid(image):
    """Centre of mass of an image, relative to its centre, as (x, y) in pixels, y upwards."""
    h, w = image.shape
    rows, cols = np.mgrid[:h, :w]
    mass = image.sum()
    return (image * cols).sum() / mass - (w - 1) / 2, (h - 1) / 2 - (image * rows).sum() / mass


def test_views_rotate_and_scale_about_the_centre():
    # A blob away from the centre moves along a circle (rotations, anticlockwise as
    # seen) or away from it or towards it (scalings).
    rows, cols = np.mgrid[:28, :28]
    blob = np.exp(-((cols - 20.0) ** 2 + (rows - 13.5) ** 2) / 4)
    x = torch.tensor(blob, dtype=torch.float32)[None, None]
    views = [v[0, 0].numpy() for v in tta_views(x)]
    assert len(views) == 1 + len(TTA_VIEWS)
    assert np.array_equal(views[0], blob.astype(np.float32))
    x0, y0 = centroid(views[0])
    for view, (degrees, scale) in zip(views[1:], TTA_VIEWS, strict=True):
        vx, vy = centroid(view)
        turned = math.degrees(math.atan2(vy, vx) - math.atan2(y0, x0))
        assert turned == pytest.approx(degrees, abs=0.3)
        assert math.hypot(vx, vy) / math.hypot(x0, y0) == pytest.approx(scale, abs=0.01)


def test_model_file_keeps_the_setting(fitted, data, tmp_path):
    clf = averaging(fitted)
    save(clf, tmp_path / "tta.skm")
    loaded = load(tmp_path / "tta.skm")
    assert loaded.test_time_augmentation is True
    assert np.array_equal(loaded.predict_proba(data[2]), clf.predict_proba(data[2]))


def test_bad_value_is_refused(data):
    X, y, _, _ = data
    with pytest.raises(InvalidParameterError, match="test_time_augmentation"):
        MNISTCNNClassifier(test_time_augmentation="yes", **PARAMS).fit(X, y)


def test_onnx_export_refuses_it_whether_or_not_onnx_is_installed(fitted, tmp_path, monkeypatch):
    from sk_mnist.export import to_onnx

    for onnx_missing in (False, True):
        if onnx_missing:
            monkeypatch.setitem(sys.modules, "onnx", None)  # makes importing it fail
        with pytest.raises(ValueError, match="export it with test_time_augmentation=False"):
            to_onnx(averaging(fitted), tmp_path / "tta.onnx")
        assert not (tmp_path / "tta.onnx").exists()
