"""partial_fit that learns new classes without forgetting the old ones."""

import numpy as np
import pytest
import torch
from scipy import stats
from skorch.callbacks import Callback

from sk_mnist import MNISTCNNClassifier
from sk_mnist._classifier import _rehearsal_repeats


@pytest.fixture(scope="module")
def old_and_new(mnist_train, mnist_test):
    X, y = mnist_train
    X_test, y_test = mnist_test
    old, old_test = y < 8, y_test < 8
    return (X[old][:4000], y[old][:4000]), (X[~old][:1000], y[~old][:1000]), (X_test, y_test, old_test)


@pytest.fixture(scope="module")
def base(old_and_new):
    (X_old, y_old), _, _ = old_and_new
    return MNISTCNNClassifier(max_epochs=4, random_state=0).fit(X_old, y_old)


def test_new_classes_grow_the_output_layer_keeping_old_units(base, old_and_new):
    _, (_, y_new), _ = old_and_new
    clf = pickle_copy(base)
    before = clf.module_.network.classifier[-1].weight.detach().clone()
    # Check the growth itself, before any training step moves the weights.
    clf._grow_classes(y_new)
    assert list(clf.classes_) == list(range(10))
    layer = clf.module_.network.classifier[-1]
    assert layer.out_features == 10
    assert torch.equal(layer.weight[:8], before)
    # the optimizer now trains the new layer
    assert any(p is layer.weight for group in clf.optimizer_.param_groups for p in group["params"])


def test_incremental_protocol_on_a_subset(base, old_and_new):
    """Fit on 0-7, then partial_fit on 8-9: all ten learnt, little forgotten."""
    _, (X_new, y_new), (X_test, y_test, old_test) = old_and_new
    clf = pickle_copy(base).set_params(lr=1e-3)
    old_before = clf.score(X_test[old_test], y_test[old_test])
    for _ in range(3):
        clf.partial_fit(X_new, y_new)
    assert list(clf.classes_) == list(range(10))
    new_accuracy = clf.score(X_test[~old_test], y_test[~old_test])
    old_after = clf.score(X_test[old_test], y_test[old_test])
    assert new_accuracy > 0.9
    # On this small subset (4-epoch base model) a few points of the old classes
    # go; the full protocol (benchmarks/bench_incremental.py) keeps the drop
    # under one point. Without rehearsal, the next test shows, it is far worse.
    assert old_after > old_before - 0.03
    assert clf.score(X_test, y_test) > 0.95


def test_without_rehearsal_old_classes_are_forgotten(base, old_and_new):
    """The control: the same protocol with no buffer forgets far more."""
    _, (X_new, y_new), (X_test, y_test, old_test) = old_and_new
    with_buffer = pickle_copy(base).set_params(lr=1e-3)
    without = pickle_copy(base).set_params(lr=1e-3, rehearsal_size=0)
    without._remember(X_new[:0], y_new[:0], np.ones(0), np.random.default_rng(0), reset=True)
    for clf in (with_buffer, without):
        for _ in range(3):
            clf.partial_fit(X_new, y_new)
    forgetful = without.score(X_test[old_test], y_test[old_test])
    assert with_buffer.score(X_test[old_test], y_test[old_test]) > forgetful + 0.1


def test_rehearsal_buffer_is_a_uniform_sample(old_and_new):
    (X_old, y_old), (X_new, y_new), _ = old_and_new
    clf = MNISTCNNClassifier(max_epochs=1, rehearsal_size=500, random_state=0).fit(X_old, y_old)
    assert clf.rehearsal_X_.shape == (500, 784) and clf.n_samples_seen_ == 4000
    # every buffered sample is a real training sample with its label
    rows = {x.tobytes(): label for x, label in zip(X_old, y_old)}
    assert all(rows[x.tobytes()] == label for x, label in zip(clf.rehearsal_X_, clf.rehearsal_y_))
    clf.partial_fit(X_new, y_new)
    assert clf.n_samples_seen_ == 5000 and len(clf.rehearsal_X_) == 500
    # 1,000 of 5,000 samples seen are new: about a fifth of the buffer
    share_new = np.isin(clf.rehearsal_y_, [8, 9]).mean()
    assert 0.12 < share_new < 0.28


def test_rehearsal_repeats_balance_classes():
    assert _rehearsal_repeats(np.repeat([8, 9], 600), np.repeat(np.arange(8), 25)) == 24
    assert _rehearsal_repeats(np.repeat([8, 9], 10), np.repeat(np.arange(8), 25)) == 1
    assert _rehearsal_repeats(np.array([1, 2]), np.array([], dtype=int)) == 0


def test_first_partial_fit_with_classes(old_and_new):
    (X_old, y_old), (X_new, y_new), _ = old_and_new
    clf = MNISTCNNClassifier(random_state=0).partial_fit(X_old[:500], y_old[:500], classes=np.arange(10))
    assert clf.module_.network.classifier[-1].out_features == 10
    clf.partial_fit(X_new[:200], y_new[:200])  # no growth needed
    assert clf.module_.network.classifier[-1].out_features == 10


def test_string_labels_grow_in_sorted_place(old_and_new):
    (X_old, y_old), (X_new, y_new), _ = old_and_new
    names = np.array(["b", "d", "f", "h", "j", "l", "n", "p", "a", "z"])
    clf = MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X_old[:600], names[y_old[:600]])
    before = clf.module_.network.classifier[-1].weight.detach().clone()
    clf.partial_fit(X_new[:200], names[y_new[:200]])
    assert list(clf.classes_) == sorted(names)
    assert clf.module_.network.classifier[-1].weight.shape[0] == 10
    assert set(clf.predict(X_new[:50])) <= set(names)
    assert before.shape[0] == 8


class LogitsAtTrainBegin(Callback):
    """Record the network's logits for ``X`` as each training run begins, before any step."""

    def __init__(self, X):
        self.X = X
        self.logits = []

    def on_train_begin(self, net, **kwargs):
        self.logits.append(net.forward(torch.as_tensor(self.X)).numpy())


@pytest.mark.parametrize("new_labels", [[0, 1], [0, 5]], ids=["before-the-old", "among-the-old"])
def test_old_units_move_to_their_sorted_place_when_classes_grow(old_and_new, new_labels):
    """New labels sorting before or among the old: every old class keeps its logit, at its sorted index."""
    (X, y), _, (X_test, _, _) = old_and_new
    old_labels = np.setdiff1d(np.arange(8), new_labels)
    known = np.isin(y, old_labels)
    record = LogitsAtTrainBegin(X_test[:100])
    clf = MNISTCNNClassifier(callbacks=[record], random_state=0)
    clf.partial_fit(X[known][:300], y[known][:300])
    assert list(clf.classes_) == list(old_labels)
    before = clf.forward(torch.as_tensor(X_test[:100])).numpy()
    clf.partial_fit(X[:300], y[:300])  # holds the new labels
    assert list(clf.classes_) == list(range(8))
    grown = record.logits[-1]  # the widened network, before this partial_fit's first step
    assert grown.shape == (100, 8)
    # With classes 0-7, the unit of label k is unit k.
    np.testing.assert_allclose(grown[:, old_labels], before, rtol=1e-5, atol=1e-5)


class LearningRates(Callback):
    """Record the learning rate of every training batch, one list per training run."""

    def __init__(self):
        self.runs = []

    def on_train_begin(self, net, **kwargs):
        self.runs.append([])

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.runs[-1] += [group["lr"] for group in net.optimizer_.param_groups]


def test_every_partial_fit_trains_at_lr_throughout(small_mnist):
    """After fit's one-cycle schedule, and after earlier partial_fits, each partial_fit runs at lr."""
    X, y, _, _ = small_mnist
    rates = LearningRates()
    clf = MNISTCNNClassifier(max_epochs=1, lr=0.01, callbacks=[rates], random_state=0)
    clf.partial_fit(X[:300], y[:300])  # the first call builds the network
    clf.fit(X[:300], y[:300])
    # fit's one-cycle schedule left another rate in the optimizer
    assert clf.optimizer_.param_groups[0]["lr"] != 0.01
    clf.partial_fit(X[300:600], y[300:600])
    clf.partial_fit(X[600:900], y[600:900])
    clf.set_params(lr=0.002)
    clf.partial_fit(X[900:1200], y[900:1200])
    first, _, after_fit, again, changed = rates.runs
    assert first and set(first) == {0.01}
    assert after_fit and set(after_fit) == {0.01}
    assert again and set(again) == {0.01}
    assert changed and set(changed) == {0.002}


def pickle_copy(estimator):
    import pickle

    return pickle.loads(pickle.dumps(estimator))


def test_fit_starts_a_new_rehearsal_buffer(small_mnist):
    """fit trains from scratch: the buffer holds its own data only, whatever came before."""
    X, y, _, _ = small_mnist
    clf = MNISTCNNClassifier(max_epochs=1, rehearsal_size=100, random_state=0)
    clf.partial_fit(X[:300], y[:300])
    clf.fit(X[300:500], y[300:500])
    assert clf.n_samples_seen_ == 200 and len(clf.rehearsal_X_) == 100
    fit_rows = {x.tobytes() for x in X[300:500]}
    assert all(x.tobytes() in fit_rows for x in clf.rehearsal_X_)


def test_rehearsal_sampling_follows_random_state(small_mnist):
    """The reservoir draws of fit and of partial_fit come from random_state, like every other draw."""
    X, y, _, _ = small_mnist

    def buffers(random_state):
        clf = MNISTCNNClassifier(max_epochs=1, rehearsal_size=50, random_state=random_state)
        after_fit = clf.fit(X[:200], y[:200]).rehearsal_X_.copy()
        return after_fit, clf.partial_fit(X[200:400], y[200:400]).rehearsal_X_

    first, again, other = buffers(0), buffers(0), buffers(1)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_later_classes_argument_adds_classes_absent_from_y(old_and_new):
    """On a later call, ``classes`` names new classes even when y holds none of their samples."""
    (X_old, y_old), _, _ = old_and_new
    clf = MNISTCNNClassifier(random_state=0).partial_fit(X_old[:300], y_old[:300])
    assert list(clf.classes_) == list(range(8))
    clf.partial_fit(X_old[300:600], y_old[300:600], classes=[8, 9])
    assert list(clf.classes_) == list(range(10))
    assert clf.module_.network.classifier[-1].out_features == 10


class TrainingSteps(Callback):
    """Count the training batches of every run, over all runs."""

    def __init__(self):
        self.count = 0

    def on_batch_begin(self, net, training=False, **kwargs):
        self.count += training


def test_partial_fit_without_new_classes_keeps_the_optimizer_state(small_mnist):
    """Known labels change nothing in the network: Adam's moments carry on from step to step."""
    X, y, _, _ = small_mnist
    steps = TrainingSteps()
    clf = MNISTCNNClassifier(rehearsal_size=0, callbacks=[steps], random_state=0)
    clf.partial_fit(X[:600], y[:600])
    clf.partial_fit(X[600:900], y[600:900])
    clf.partial_fit(X[900:1200], y[900:1200])
    assert steps.count == 3 + 2 + 2  # ceil(600 / 256), then ceil(300 / 256) twice
    for state in clf.optimizer_.state.values():
        assert int(state["step"]) == steps.count


def test_rehearsal_buffer_holds_each_sample_with_equal_probability():
    """Reservoir sampling, across calls: every one of n samples ends in a buffer of k with probability k / n."""
    n, k, trials = 6, 2, 3000
    X, y = np.arange(n, dtype=np.float32).reshape(n, 1), np.arange(n)
    sample_weight = y + 0.5
    clf = MNISTCNNClassifier(rehearsal_size=k)
    counts = np.zeros(n, dtype=int)
    for trial in range(trials):
        rng = np.random.default_rng(trial)
        for i, chunk in enumerate([slice(0, 3), slice(3, 4), slice(4, 6)]):
            clf._remember(X[chunk], y[chunk], sample_weight[chunk], rng, reset=i == 0)
        assert len(set(clf.rehearsal_y_)) == k and clf.n_samples_seen_ == n
        # Each sample's pixels, label and weight stay together.
        np.testing.assert_array_equal(clf.rehearsal_X_[:, 0], clf.rehearsal_y_)
        np.testing.assert_array_equal(clf.rehearsal_sample_weight_, clf.rehearsal_y_ + 0.5)
        counts[clf.rehearsal_y_] += 1
    # Uniform: counts of trials * k / n each. A reservoir that keeps early samples
    # with probability (k + 1) / (n + 1) instead would give about 1286 against 857.
    assert stats.chisquare(counts).pvalue > 1e-4


def test_rehearsal_buffer_keeps_old_labels_whole_when_new_ones_are_longer_or_shorter(small_mnist):
    X, y, _, _ = small_mnist
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    clf = MNISTCNNClassifier(max_epochs=1, rehearsal_size=300, random_state=0)
    clf.partial_fit(X[:200], names[y[:200]], classes=np.concatenate([names, ["a-much-longer-label", "x"]]))
    old = clf.rehearsal_y_.copy()
    clf.partial_fit(X[200:210], np.full(10, "x"))
    np.testing.assert_array_equal(clf.rehearsal_y_[:200], old)
    clf.partial_fit(X[210:220], np.full(10, "a-much-longer-label"))
    np.testing.assert_array_equal(clf.rehearsal_y_[:200], old)
    assert list(clf.rehearsal_y_[200:]) == ["x"] * 10 + ["a-much-longer-label"] * 10
