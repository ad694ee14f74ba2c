"""Sample and class weights: the weighted loss, scikit-learn's conventions, metadata routing."""

import numpy as np
import pytest
import sklearn
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from skorch.callbacks import Callback

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier
from sk_mnist._classifier import _rehearsal_repeats
from sk_mnist.modules import DistillationLoss
from sk_mnist.preprocessing import PixelScaler

FAST = dict(max_epochs=2, random_state=0)

#: The normalized weights of every training set a RecordWeights callback saw.
#: Module-level: cloning an estimator deep-copies its callbacks.
SEEN = []


class RecordWeights(Callback):
    """Record the weights of the training set, as the first epoch begins."""

    def on_train_begin(self, net, **kwargs):
        self.recorded_ = False

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if not self.recorded_:
            SEEN.append(dataset_train.y[1].cpu().numpy())
            self.recorded_ = True


@pytest.fixture
def seen():
    SEEN.clear()
    yield SEEN
    SEEN.clear()


@pytest.fixture(scope="module")
def data(small_mnist):
    X, y, X_test, y_test = small_mnist
    return X[:600], y[:600], X_test, y_test


def test_the_loss_is_the_mean_of_per_sample_losses_times_their_weights(data):
    X, y, _, _ = data
    clf = MNISTCNNClassifier(max_epochs=1, criterion__reduction="sum", random_state=0).fit(X[:100], y[:100])
    assert clf.criterion_.reduction == "none"  # per sample, whatever was asked
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    targets, weights = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0.0, 1.0, 2.0, 0.5, 1.5])
    per_sample = F.cross_entropy(logits, targets, reduction="none", label_smoothing=0.1)
    assert torch.equal(clf.get_loss(logits, (targets, weights)), (per_sample * weights).mean())
    torch.testing.assert_close(
        clf.get_loss(logits, (targets, torch.ones(5))), F.cross_entropy(logits, targets, label_smoothing=0.1)
    )


def test_weights_are_relative_and_unit_weights_are_no_weights(data):
    X, y, X_test, _ = data
    weights = np.random.default_rng(0).integers(1, 4, len(y))

    def proba(**fit_params):
        return MNISTCNNClassifier(**FAST).fit(X, y, **fit_params).predict_proba(X_test)

    unweighted = proba()
    np.testing.assert_array_equal(proba(sample_weight=np.ones(len(y))), unweighted)
    weighted = proba(sample_weight=weights)
    # Normalized to a mean of 1: only the ratios between weights count.
    np.testing.assert_array_equal(proba(sample_weight=5 * weights), weighted)
    assert not np.allclose(weighted, unweighted)


def test_a_class_of_weight_zero_is_not_learned_whichever_way_it_is_weighted(data):
    X, y, X_test, y_test = data
    by_class = MNISTCNNClassifier(class_weight={0: 0.0}, **FAST).fit(X, y)
    by_sample = MNISTCNNClassifier(**FAST).fit(X, y, sample_weight=(y != 0).astype(float))
    np.testing.assert_array_equal(by_class.predict_proba(X_test), by_sample.predict_proba(X_test))
    assert np.mean(y_test == 0) > 0.05
    assert np.mean(by_class.predict(X_test) == 0) < 0.01


def test_class_weights_are_looked_up_by_the_labels_as_given(data):
    # Labels "0" to "9": scikit-learn's compute_class_weight would read the key "3" as 3.
    X, y, X_test, _ = data
    labels = y.astype(str)
    by_class = MNISTCNNClassifier(class_weight={"3": 0.0}, **FAST).fit(X, labels)
    by_sample = MNISTCNNClassifier(**FAST).fit(X, labels, sample_weight=(labels != "3").astype(float))
    np.testing.assert_array_equal(by_class.predict_proba(X_test), by_sample.predict_proba(X_test))


def test_balanced_class_weights_are_scikit_learns(data):
    X, y, X_test, _ = data
    keep = (y != 0) | (np.cumsum(y == 0) <= 10)  # ten zeros among some 540 other digits
    X, y = X[keep], y[keep]
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))

    def proba(clf, **fit_params):
        return clf.fit(X, y, **fit_params).predict_proba(X_test)

    balanced = proba(MNISTCNNClassifier(class_weight="balanced", **FAST))
    np.testing.assert_array_equal(
        balanced, proba(MNISTCNNClassifier(**FAST), sample_weight=compute_sample_weight("balanced", y))
    )
    # With sample weights, the classes' frequencies are weighted too.
    class_weight = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=sample_weight)
    np.testing.assert_allclose(
        proba(MNISTCNNClassifier(class_weight="balanced", **FAST), sample_weight=sample_weight),
        proba(MNISTCNNClassifier(**FAST), sample_weight=sample_weight * class_weight[y]),
        rtol=0,
        atol=1e-6,
    )


def test_score_is_weighted_as_scikit_learns(data):
    X, y, X_test, y_test = data
    clf = MNISTCNNClassifier(**FAST).fit(X, y)
    weights = np.where(clf.predict(X_test) == y_test, 1.0, 5.0)
    score = clf.score(X_test, y_test, sample_weight=weights)
    assert score == accuracy_score(y_test, clf.predict(X_test), sample_weight=weights)
    assert score < clf.score(X_test, y_test)


def test_partial_fit_rehearses_samples_with_the_weights_they_came_with(data, seen):
    X, y, _, _ = data
    weights = np.arange(1.0, len(y) + 1)  # a sample's weight names its row
    clf = MNISTCNNClassifier(rehearsal_size=100, callbacks=[RecordWeights()], random_state=0)
    clf.partial_fit(X[:300], y[:300], classes=np.arange(10), sample_weight=weights[:300])
    rows = clf.rehearsal_sample_weight_.astype(int) - 1
    np.testing.assert_array_equal(clf.rehearsal_X_, X[rows])
    np.testing.assert_array_equal(clf.rehearsal_y_, y[rows])
    buffer = clf.rehearsal_sample_weight_.copy()
    clf.partial_fit(X[300:400], y[300:400], sample_weight=weights[300:400])
    repeats = _rehearsal_repeats(y[300:400], clf.rehearsal_y_)
    trained = np.concatenate([weights[300:400], *[buffer] * repeats])
    np.testing.assert_allclose(seen[-1], trained / trained.mean(), rtol=1e-6)


def test_weights_reach_the_network_through_metadata_routing(data, seen):
    X, y, _, _ = data
    X, y = X[:300], y[:300]
    weights = np.where(y % 2 == 0, 1.0, 3.0)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = MNISTCNNClassifier(max_epochs=1, callbacks=[RecordWeights()], random_state=0)
        pipe = make_pipeline(
            PixelScaler(), clf.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        )
        result = cross_validate(
            pipe, X, y, cv=2, params={"sample_weight": weights}, return_estimator=True, return_indices=True
        )
        for estimator, test, score in zip(
            result["estimator"], result["indices"]["test"], result["test_score"]
        ):
            assert score == accuracy_score(y[test], estimator.predict(X[test]), sample_weight=weights[test])
        search = GridSearchCV(pipe, {"mnistcnnclassifier__dropout": [0.1, 0.2]}, cv=2)
        search.fit(X, y, sample_weight=weights)
    assert len(seen) == 2 + 2 * 2 + 1  # two folds; two candidates on two folds, and the refit
    for trained in seen:
        # Each fit weighed the odd digits three times the even ones.
        low, high = np.unique(trained)
        assert high / low == pytest.approx(3.0)


@pytest.mark.parametrize(
    "fit_params, message",
    [
        ({"sample_weight": -np.ones(600)}, "Negative values in data passed to `sample_weight`"),
        ({"sample_weight": np.ones(5)}, r"sample_weight.shape == \(5,\), expected \(600,\)!"),
        ({"sample_weight": np.zeros(600)}, "Sample weights must contain at least one non-zero number"),
    ],
)
def test_bad_sample_weights_are_refused(data, fit_params, message):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=message):
        MNISTCNNClassifier(max_epochs=1).fit(X, y, **fit_params)


def test_class_weights_that_zero_every_sample_are_refused(data):
    X, y, _, _ = data
    with pytest.raises(ValueError) as caught:
        MNISTCNNClassifier(class_weight=dict.fromkeys(range(10), 0.0)).fit(X, y)
    assert str(caught.value) == (
        "MNISTCNNClassifier needs some sample of positive weight; with class_weight "
        "{0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 4: 0.0, 5: 0.0, 6: 0.0, 7: 0.0, 8: 0.0, 9: 0.0}, every "
        "sample's weight is 0."
    )


@pytest.mark.parametrize(
    "class_weight, message",
    [
        ({0: "x"}, "class_weight must weigh each class by a finite number >= 0; got 'x' for 0."),
        ({0: float("nan")}, "class_weight must weigh each class by a finite number >= 0; got nan for 0."),
        ({3: -1.0}, "class_weight must weigh each class by a finite number >= 0; got -1.0 for 3."),
        ({0: True}, "class_weight must weigh each class by a finite number >= 0; got True for 0."),
        (
            {0: 1.0, 11: 2.0},
            "class_weight names labels [11] that are not among the classes [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].",
        ),
    ],
)
def test_bad_class_weights_are_refused(data, class_weight, message):
    X, y, _, _ = data
    with pytest.raises(ValueError) as caught:
        MNISTCNNClassifier(class_weight=class_weight, max_epochs=1).fit(X[:100], y[:100])
    assert str(caught.value) == message


def test_huge_sample_weights_are_normalized_without_overflow(data):
    X, y, X_test, _ = data
    sample_weight = np.r_[1e308, 1e308, np.ones(98)]  # their sum overflows float64
    clf = MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X[:100], y[:100], sample_weight=sample_weight)
    # Normalized through their sum, the weights would all be 0 and nothing learnt.
    assert 0 < clf.history_[-1, "train_loss"] < np.inf
    assert np.isfinite(clf.predict_proba(X_test)).all()


def test_balanced_class_weights_are_refused_in_partial_fit(data):
    X, y, _, _ = data
    clf = MNISTCNNClassifier(class_weight="balanced")
    with pytest.raises(ValueError) as caught:
        clf.partial_fit(X, y)
    assert str(caught.value) == (
        "class_weight='balanced' is not available in partial_fit: the class frequencies of one batch are "
        "not those of the data. Compute weights from a large enough sample of the labels with "
        "sklearn.utils.class_weight.compute_class_weight and pass them as a dict."
    )
    assert not clf.initialized_


class RecordingTeacher(LogisticRegression):
    """A teacher that records the sample weights it is fitted with."""

    def fit(self, X, y, sample_weight=None):
        SEEN.append(sample_weight)
        return super().fit(X, y, sample_weight=sample_weight)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_unfitted_teacher_is_fitted_with_the_weights_where_they_weigh(data, seen):
    X, y, _, _ = data
    X, y = X[:200] / 255, y[:200]
    weights = np.where(y < 5, 1.0, 2.0)
    student = DistilledCNNClassifier(RecordingTeacher(max_iter=50), max_epochs=1, random_state=0)
    student.fit(X, y, sample_weight=weights)
    student.fit(X, y, sample_weight=np.ones(len(y)))
    student.fit(X, y)
    assert len(seen) == 3
    np.testing.assert_array_equal(seen[0], weights)
    assert seen[1] is None and seen[2] is None


def test_distillation_loss_per_sample_averages_to_the_batch_loss():
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    soft = torch.softmax(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)), dim=1)
    target = torch.cat([torch.tensor([[0.0], [1.0], [2.0], [1.0]]), soft], dim=1)
    per_sample = DistillationLoss(2.0, 0.6, reduction="none")(logits, target)
    assert per_sample.shape == (4,)
    torch.testing.assert_close(per_sample.mean(), DistillationLoss(2.0, 0.6)(logits, target))
    # Row by row, each sample's loss is that of a batch of one.
    for i in range(4):
        torch.testing.assert_close(
            per_sample[i], DistillationLoss(2.0, 0.6)(logits[i : i + 1], target[i : i + 1])
        )
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'none'; got 'sum'."):
        DistillationLoss(reduction="sum")
