import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier
from sk_mnist.modules import DistillationLoss, SmallCNN
from sk_mnist.preprocessing import PixelScaler


@pytest.fixture(scope="module")
def data(small_mnist):
    return small_mnist


@pytest.fixture(scope="module")
def teacher(data):
    X, y, _, _ = data
    return MNISTCNNClassifier(max_epochs=4, random_state=0).fit(X, y)


def n_parameters(clf):
    return sum(p.numel() for p in clf.module_.parameters())


def test_student_is_small_and_learns(teacher, data):
    X, y, X_test, y_test = data
    student = DistilledCNNClassifier(teacher, max_epochs=6, random_state=0).fit(X, y)
    assert student.teacher_ is teacher  # a fitted teacher is used as it is
    assert isinstance(student.module_.network, SmallCNN)
    assert n_parameters(student) < 0.3 * n_parameters(teacher)
    assert student.score(X_test, y_test) > 0.8
    assert student.get_params()["student"] == "small"


def test_soft_targets_are_the_teachers_softened_probabilities(teacher, data):
    X, y, _, _ = data
    student = DistilledCNNClassifier(teacher, temperature=2.0, random_state=0)
    student._validate_training_data(X[:50], y[:50], reset=True)
    targets = student._targets(X[:50], y[:50]).numpy()
    np.testing.assert_array_equal(targets[:, 0], y[:50])
    proba = teacher.predict_proba(X[:50])
    softened = proba ** 0.5 / (proba ** 0.5).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(targets[:, 1:], softened, atol=1e-6)


def test_unfitted_teacher_is_cloned_and_fitted(data):
    X, y, X_test, y_test = data
    teacher = make_pipeline(PixelScaler(), LogisticRegression(max_iter=200))
    student = DistilledCNNClassifier(teacher, max_epochs=2, random_state=0).fit(X, y)
    assert student.teacher_ is not teacher and not hasattr(teacher, "classes_")
    assert student.teacher_.score(X_test, y_test) > 0.8


def test_default_teacher_is_trained_first(data):
    X, y, _, _ = data
    student = DistilledCNNClassifier(max_epochs=1, random_state=0, module__hidden_units=32).fit(X[:300], y[:300])
    assert isinstance(student.teacher_, MNISTCNNClassifier)
    assert student.teacher_.random_state == 0


def test_teacher_must_know_every_class(data):
    X, y, _, _ = data
    partial = MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X[y < 5], y[y < 5])
    with pytest.raises(ValueError, match="does not know the classes"):
        DistilledCNNClassifier(partial, max_epochs=1).fit(X, y)


def test_alpha_zero_is_plain_cross_entropy():
    import torch

    logits = torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 1, 0])
    target = torch.cat([labels[:, None].float(), torch.full((5, 3), 1 / 3)], 1)
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(DistillationLoss(4.0, 0.0)(logits, target), expected)
    # and the soft term pulls toward the teacher: zero when the student matches it
    matched = torch.cat([labels[:, None].float(), torch.softmax(logits / 4.0, 1)], 1)
    assert float(DistillationLoss(4.0, 1.0)(logits, matched)) == pytest.approx(0.0, abs=1e-6)
