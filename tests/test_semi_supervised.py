"""Distillation from unlabelled images (-1 labels) and from a transfer set that lacks a class."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import sk_mnist
from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier
from sk_mnist.modules import DistillationLoss, output_layer


def hide_labels(y, n_labelled, seed=0):
    """``y`` with all but ``n_labelled`` labels replaced by -1."""
    rng = np.random.default_rng(seed)
    partial = np.full_like(y, -1)
    keep = rng.choice(len(y), n_labelled, replace=False)
    partial[keep] = y[keep]
    return partial


def test_unlabelled_sample_loss_is_the_soft_term_alone():
    logits = torch.randn(4, 3, dtype=torch.float64)
    soft = torch.softmax(torch.randn(4, 3, dtype=torch.float64), dim=1)
    labels = torch.tensor([[0.0], [-1.0], [2.0], [-1.0]], dtype=torch.float64)
    loss = DistillationLoss(temperature=2.0, alpha=0.7, reduction="none")
    mixed = loss(logits, torch.cat([labels, soft], dim=1))
    soft_only = DistillationLoss(temperature=2.0, alpha=1.0, reduction="none")(
        logits, torch.cat([labels.clamp(min=0), soft], dim=1)
    )
    unlabelled = labels[:, 0] == -1
    torch.testing.assert_close(mixed[unlabelled], 0.7 * soft_only[unlabelled], rtol=1e-12, atol=0)
    assert torch.all(mixed[~unlabelled] > 0.7 * soft_only[~unlabelled])  # labelled: the hard term too


def test_default_teacher_learns_the_labelled_images_only(small_mnist):
    X, y, _, _ = small_mnist
    y_partial = hide_labels(y, 200)
    teacher = MNISTCNNClassifier(architecture="lenet", max_epochs=1, random_state=0)
    student = DistilledCNNClassifier(teacher, max_epochs=1, random_state=0).fit(X, y_partial)
    assert student.teacher_.n_samples_seen_ == 200
    labelled = y_partial != -1
    np.testing.assert_array_equal(student.classes_, np.unique(y[labelled]))
    np.testing.assert_array_equal(
        student.teacher_.rehearsal_y_, y[labelled][: len(student.teacher_.rehearsal_y_)]
    )
    assert set(student.predict(X[:50])) <= set(student.classes_)


def test_with_alpha_one_labels_change_nothing(lenet_teacher, small_mnist):
    """Soft labels alone teach: hiding every label trains the very same network."""
    X, y, X_test, _ = small_mnist
    params = {"alpha": 1.0, "max_epochs": 1, "random_state": 0}
    labelled = DistilledCNNClassifier(lenet_teacher, **params).fit(X, y)
    unlabelled = DistilledCNNClassifier(lenet_teacher, **params).fit(X, np.full_like(y, -1))
    np.testing.assert_array_equal(labelled.predict_proba(X_test), unlabelled.predict_proba(X_test))
    # ... while with labels in the loss, the labels do change the network.
    params["alpha"] = 0.7
    labelled = DistilledCNNClassifier(lenet_teacher, **params).fit(X, y)
    unlabelled = DistilledCNNClassifier(lenet_teacher, **params).fit(X, np.full_like(y, -1))
    assert not np.array_equal(labelled.predict_proba(X_test), unlabelled.predict_proba(X_test))


def test_unlabelled_images_teach_the_student(small_mnist):
    """Soft labels on the unlabelled images beat training on the few labelled ones."""
    X, y, X_test, y_test = small_mnist
    y_partial = hide_labels(y, 100)
    labelled = y_partial != -1
    teacher = MNISTCNNClassifier(architecture="lenet", batch_size=32, max_epochs=60, random_state=0)
    teacher.fit(X[labelled], y[labelled])
    alone = DistilledCNNClassifier(teacher, max_epochs=8, random_state=0).fit(X[labelled], y[labelled])
    taught = DistilledCNNClassifier(teacher, max_epochs=8, random_state=0).fit(X, y_partial)
    assert taught.score(X_test, y_test) > alone.score(X_test, y_test) + 0.1


def test_object_labels_mark_unlabelled_images_with_minus_one(small_mnist):
    X, y, X_test, _ = small_mnist
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    y_named = names[hide_labels(y, 300)].astype(object)
    y_named[hide_labels(y, 300) == -1] = -1
    teacher = MNISTCNNClassifier(architecture="lenet", max_epochs=1, random_state=0)
    student = DistilledCNNClassifier(teacher, max_epochs=1, random_state=0).fit(X, y_named)
    np.testing.assert_array_equal(student.classes_, np.sort(names))
    assert set(student.predict(X_test)) <= set(names)


def test_string_minus_one_is_refused_as_scikit_learn_does(small_mnist):
    X, y, _, _ = small_mnist
    y_text = np.where(hide_labels(y, 300) == -1, "-1", y.astype(str))
    with pytest.raises(ValueError, match="use dtype object and the number -1"):
        DistilledCNNClassifier(max_epochs=1).fit(X, y_text)


@pytest.mark.parametrize(
    "n_labelled, message",
    [(0, "got none among its labelled samples"), (1, r"got 1 class \(.*\) among its labelled samples")],
)
def test_too_few_labelled_classes_is_a_value_error(small_mnist, n_labelled, message):
    X, y, _, _ = small_mnist
    with pytest.raises(ValueError, match=message):
        DistilledCNNClassifier(max_epochs=1).fit(X, hide_labels(y, n_labelled))


def test_fitted_teacher_gives_its_classes_even_to_an_unlabelled_transfer_set(lenet_teacher, small_mnist):
    X, y, X_test, _ = small_mnist
    student = DistilledCNNClassifier(lenet_teacher, max_epochs=1, random_state=0).fit(X, np.full_like(y, -1))
    np.testing.assert_array_equal(student.classes_, lenet_teacher.classes_)
    assert student.predict_proba(X_test).shape == (len(X_test), 10)


def test_minus_one_stays_out_of_classes_weights_and_validation(small_mnist):
    X, y, _, _ = small_mnist
    y_partial = hide_labels(y, 300)
    student = DistilledCNNClassifier(
        MNISTCNNClassifier(architecture="lenet", max_epochs=1),
        class_weight="balanced",
        early_stopping=True,
        max_epochs=2,
        random_state=0,
    ).fit(X, y_partial)
    assert -1 not in student.classes_
    weights = student._class_weights(y_partial, np.ones(len(y)))
    labelled = y_partial != -1
    np.testing.assert_array_equal(weights[~labelled], 1.0)
    counts = np.bincount(y_partial[labelled])
    np.testing.assert_allclose(weights[labelled], labelled.sum() / (10 * counts[y_partial[labelled]]))
    # Validation accuracy is scored on labelled images only, and so is a real accuracy.
    assert all(0 < acc <= 1 for acc in student.history[:, "valid_acc"])


def test_partial_fit_with_unlabelled_images_keeps_the_classes(lenet_teacher, small_mnist):
    X, y, _, _ = small_mnist
    y_partial = hide_labels(y, 300)
    student = DistilledCNNClassifier(lenet_teacher, random_state=0, rehearsal_size=100)
    student.partial_fit(X[:600], y_partial[:600], classes=np.arange(10))
    student.partial_fit(X[600:], y_partial[600:])
    np.testing.assert_array_equal(student.classes_, np.arange(10))
    assert output_layer(student.module_.network).out_features == 10


@pytest.fixture(scope="module")
def no_threes(lenet_teacher, small_mnist):
    X, y, _, _ = small_mnist
    kept = y != 3
    return DistilledCNNClassifier(lenet_teacher, max_epochs=3, random_state=0).fit(X[kept], y[kept])


def test_student_of_a_transfer_set_without_a_class_keeps_an_output_for_it(no_threes):
    np.testing.assert_array_equal(no_threes.classes_, np.arange(10))


def test_fit_output_bias_moves_the_biases_only_to_the_likeliest_offsets(no_threes, small_mnist):
    X, y, _, _ = small_mnist
    student = DistilledCNNClassifier(no_threes.teacher, max_epochs=3, random_state=0).fit(
        X[y != 3], y[y != 3]
    )
    layer = output_layer(student.module_.network)
    weight, bias = layer.weight.detach().clone(), layer.bias.detach().clone()
    few = np.concatenate([np.flatnonzero(y == c)[:5] for c in range(10)])

    def log_likelihood():
        return np.log(student.predict_proba(X[few])[np.arange(len(few)), y[few]]).sum()

    before = log_likelihood()
    assert student.fit_output_bias(X[few], y[few]) is student
    assert torch.equal(layer.weight, weight)
    shift = (layer.bias - bias).detach()
    assert abs(float(shift.sum())) < 1e-5  # centred offsets
    assert log_likelihood() > before
    # At the likeliest offsets the gradient is 0: each class's mean predicted
    # probability over the few images is its share of their labels (here 1/10,
    # the omitted 3 included).
    np.testing.assert_allclose(student.predict_proba(X[few]).mean(axis=0), np.full(10, 0.1), atol=1e-4)


def test_fit_output_bias_refuses_unknown_labels_and_unfitted_students(no_threes, small_mnist):
    X, y, _, _ = small_mnist
    with pytest.raises(ValueError, match="not in classes_"):
        no_threes.fit_output_bias(X[:5], np.full(5, 11))
    with pytest.raises(NotFittedError):
        DistilledCNNClassifier().fit_output_bias(X[:5], y[:5])


@pytest.mark.parametrize("labels", ["numbers", "objects"])
def test_student_of_unlabelled_images_saves_and_loads(small_mnist, tmp_path, labels):
    X, y, X_test, _ = small_mnist
    y_partial = hide_labels(y, 300).astype(object if labels == "objects" else y.dtype)
    if labels == "objects":
        y_partial[y_partial != -1] = [f"digit {label}" for label in y_partial[y_partial != -1]]
    student = DistilledCNNClassifier(
        MNISTCNNClassifier(architecture="lenet", max_epochs=1),
        max_epochs=1,
        rehearsal_size=50,
        random_state=0,
    ).fit(X, y_partial)
    sk_mnist.save(student, tmp_path / "student.skm")
    loaded = sk_mnist.load(tmp_path / "student.skm")
    np.testing.assert_array_equal(loaded.predict_proba(X_test), student.predict_proba(X_test))
    assert list(loaded.rehearsal_y_) == list(student.rehearsal_y_)
    loaded.partial_fit(X[:100], y_partial[:100])  # the buffer's -1 labels rehearse as unlabelled
    np.testing.assert_array_equal(loaded.classes_, student.classes_)
