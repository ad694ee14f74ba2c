import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier
from sk_mnist.modules import DistillationLoss, SmallCNN
from sk_mnist.preprocessing import PixelScaler


def n_parameters(clf):
    return sum(p.numel() for p in clf.module_.parameters())


def test_student_is_small_and_learns(lenet_teacher, small_mnist):
    X, y, X_test, y_test = small_mnist
    student = DistilledCNNClassifier(lenet_teacher, max_epochs=6, random_state=0).fit(X, y)
    assert student.teacher_ is lenet_teacher  # a fitted teacher is used as it is
    assert isinstance(student.module_.network, SmallCNN)
    assert n_parameters(student) < 0.3 * n_parameters(lenet_teacher)
    assert student.score(X_test, y_test) > 0.8
    assert student.get_params()["student"] == "small"


@pytest.fixture(scope="module")
def student(lenet_teacher, small_mnist):
    X, y, _, _ = small_mnist
    return DistilledCNNClassifier(lenet_teacher, temperature=2.0, max_epochs=1, random_state=0).fit(X, y)


def test_soft_labels_are_the_teachers_softened_probabilities(lenet_teacher, student, small_mnist):
    X, _, _, _ = small_mnist
    with torch.no_grad():
        images = student.module_.view(torch.as_tensor(X[:50]))  # no augmentation
    soft = student._soft_labels(images).numpy()
    proba = lenet_teacher.predict_proba(X[:50])
    softened = proba**0.5 / (proba**0.5).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft, softened, atol=1e-6)


def test_teacher_is_asked_about_the_augmented_images_the_student_sees(student, small_mnist, monkeypatch):
    X, y, _, _ = small_mnist
    asked, seen = [], []
    teacher = student.teacher_
    predict_proba = teacher.predict_proba

    def spy(rows):
        asked.append(rows)
        return predict_proba(rows)

    monkeypatch.setattr(teacher, "predict_proba", spy)
    hook = student.module_.standardize.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
    try:
        batch = (torch.as_tensor(X[:64]), (torch.as_tensor(y[:64]), torch.ones(64)))
        step = student.train_step_single(batch)
    finally:
        hook.remove()
    assert len(asked) == len(seen) == 1
    np.testing.assert_array_equal(asked[0], seen[0].reshape(64, -1).detach().numpy())
    # the images were augmented, so they are not the raw pixels
    assert not np.allclose(asked[0], X[:64])
    assert step["loss"].ndim == 0 and step["y_pred"].shape == (64, 10)


def test_unfitted_teacher_is_cloned_and_fitted(small_mnist):
    X, y, X_test, y_test = small_mnist
    teacher = make_pipeline(PixelScaler(), LogisticRegression(max_iter=200))
    student = DistilledCNNClassifier(teacher, max_epochs=2, random_state=0).fit(X, y)
    assert student.teacher_ is not teacher and not hasattr(teacher, "classes_")
    assert student.teacher_.score(X_test, y_test) > 0.8


def test_first_partial_fit_fits_an_unfitted_teacher_on_its_samples(small_mnist):
    X, y, X_test, _ = small_mnist
    teacher = make_pipeline(PixelScaler(), LogisticRegression(max_iter=200))
    student = DistilledCNNClassifier(teacher, random_state=0).partial_fit(X, y)
    assert student.teacher_ is not teacher and not hasattr(teacher, "classes_")
    # the clone learnt exactly what the same pipeline learns from these samples
    reference = clone(teacher).fit(X, y)
    np.testing.assert_array_equal(student.teacher_.predict_proba(X_test), reference.predict_proba(X_test))


def test_default_teacher_is_trained_first(small_mnist):
    X, y, _, _ = small_mnist
    student = DistilledCNNClassifier(max_epochs=1, random_state=0, module__hidden_units=32).fit(
        X[:300], y[:300]
    )
    assert isinstance(student.teacher_, MNISTCNNClassifier)
    assert student.teacher_.random_state == 0
    # the strongest recipe, trained to the end of its schedule
    assert student.teacher_.architecture == "deep" and not student.teacher_.early_stopping
    # a teacher trained on smoothed labels distills worse: the default one is not
    assert student.teacher_.label_smoothing == 0.0 and student.label_smoothing == 0.0


def test_teacher_must_know_every_class(small_mnist):
    X, y, _, _ = small_mnist
    partial = MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X[y < 5], y[y < 5])
    with pytest.raises(ValueError, match="does not know the classes"):
        DistilledCNNClassifier(partial, max_epochs=1).fit(X, y)


def test_alpha_zero_is_plain_cross_entropy():
    logits = torch.randn(5, 3)
    labels = torch.tensor([0, 1, 2, 1, 0])
    target = torch.cat([labels[:, None].float(), torch.full((5, 3), 1 / 3)], 1)
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.allclose(DistillationLoss(4.0, 0.0)(logits, target), expected)
    # and the soft term pulls toward the teacher: zero when the student matches it
    matched = torch.cat([labels[:, None].float(), torch.softmax(logits / 4.0, 1)], 1)
    assert float(DistillationLoss(4.0, 1.0)(logits, matched)) == pytest.approx(0.0, abs=1e-6)
    # label smoothing applies to the labels' term
    smoothed = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.2)
    assert torch.allclose(DistillationLoss(4.0, 0.0, label_smoothing=0.2)(logits, target), smoothed)


@pytest.mark.parametrize("temperature, alpha", [(3.0, 0.3), (0.5, 0.8)])
def test_loss_is_the_documented_mix_of_soft_and_hard_terms(temperature, alpha):
    # alpha * T**2 * KL(teacher_T || softmax(logits / T)) + (1 - alpha) * CE(logits, labels),
    # computed by hand in float64 from random logits: T != 1 and 0 < alpha < 1
    # weigh every part, the T**2 included.
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(6, 4))
    labels = rng.integers(0, 4, size=6)
    teacher = rng.random((6, 4)) + 0.05
    teacher /= teacher.sum(axis=1, keepdims=True)  # already softened, as the target carries it

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    kl = (teacher * (np.log(teacher) - log_softmax(logits / temperature))).sum() / len(logits)
    cross_entropy = -log_softmax(logits)[np.arange(6), labels].mean()
    expected = alpha * temperature**2 * kl + (1 - alpha) * cross_entropy
    target = torch.as_tensor(np.column_stack([labels, teacher]))
    loss = DistillationLoss(temperature, alpha)(torch.as_tensor(logits), target)
    assert float(loss) == pytest.approx(expected, rel=1e-12)


def test_soft_labels_keep_the_teachers_exact_probabilities(small_mnist):
    X, y, _, _ = small_mnist
    # A 1-nearest-neighbour teacher is certain: its probabilities are exactly 0 and 1.
    teacher = KNeighborsClassifier(n_neighbors=1).fit(X, y)
    student = DistilledCNNClassifier(teacher, temperature=3.0, max_epochs=1, random_state=0).fit(X, y)
    images = torch.as_tensor(X[:20], dtype=torch.float32).reshape(20, 1, 28, 28)
    soft = student._soft_labels(images)
    np.testing.assert_array_equal(soft.numpy(), np.eye(10)[y[:20]])
    assert np.isfinite(student.history_[:, "train_loss"]).all()
    # Softening is exact: softmax(log p / T) of the teacher's probabilities.
    proba = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0, 0, 0, 0]])
    expected = proba ** (1 / 3.0) / (proba ** (1 / 3.0)).sum()
    student.teacher_ = _Fixed(proba)
    np.testing.assert_allclose(student._soft_labels(images[:1]).numpy(), expected)


class _Fixed:
    """A stand-in teacher that always answers the same probabilities."""

    classes_ = np.arange(10)

    def __init__(self, proba):
        self.proba = proba

    def predict_proba(self, X):
        return self.proba
