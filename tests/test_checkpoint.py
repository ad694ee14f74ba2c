"""Checkpoints that survive a kill, resume that loses at most one epoch, and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sk_mnist import MNISTCNNClassifier
from sk_mnist._checkpoint import FILENAME

PARAMS = dict(max_epochs=4, early_stopping=True, n_iter_no_change=10, random_state=0)
# Early stopping that ends the fit well before max_epochs.
LIVE_STOPPING = {"max_epochs": 10, "early_stopping": True, "n_iter_no_change": 1, "random_state": 0}


class InterruptAfter(Callback):
    """Raise KeyboardInterrupt at the end of an epoch, as Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def data(small_mnist):
    X, y, _, _ = small_mnist
    return X[:600], y[:600]


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    return MNISTCNNClassifier(checkpoint_dir=tmp_path_factory.mktemp("full"), **PARAMS).fit(*data)


@pytest.fixture(scope="module")
def stopped_early(data, tmp_path_factory):
    clf = MNISTCNNClassifier(checkpoint_dir=tmp_path_factory.mktemp("stopped"), **LIVE_STOPPING).fit(*data)
    assert clf.n_iter_ < LIVE_STOPPING["max_epochs"]  # early stopping did end it
    return clf


def assert_same_model(a, b):
    for (name, x), y in zip(a.module_.state_dict().items(), b.module_.state_dict().values()):
        assert torch.equal(x, y), name
    assert a.history_[:, "valid_acc"] == b.history_[:, "valid_acc"]


def test_checkpoint_written_every_epoch(uninterrupted):
    state = torch.load(uninterrupted.checkpoint_dir / FILENAME, weights_only=True)
    assert state["finished"] and len(json.loads(state["history"])) == 4
    assert not list(uninterrupted.checkpoint_dir.glob("*.tmp"))


def test_resume_continues_as_if_never_interrupted(data, uninterrupted, tmp_path):
    with pytest.warns(UserWarning, match="interrupted after 2 epochs"):
        MNISTCNNClassifier(checkpoint_dir=tmp_path, callbacks=[InterruptAfter(2)], **PARAMS).fit(*data)
    resumed = MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **PARAMS).fit(*data)
    assert resumed.n_iter_ == 4 and resumed.history_[:, "epoch"] == [1, 2, 3, 4]
    assert_same_model(resumed, uninterrupted)


class CountTrainingBatches(Callback):
    """Count the training batches a fit runs."""

    def on_train_begin(self, net, **kwargs):
        self.count = 0

    def on_batch_begin(self, net, training=False, **kwargs):
        self.count += training


@pytest.mark.parametrize("finished", ["uninterrupted", "stopped_early"])
def test_resuming_a_finished_fit_trains_nothing(data, finished, request):
    """Whether it ran all max_epochs or early stopping ended it, a finished fit resumes without a step."""
    done = request.getfixturevalue(finished)
    params = PARAMS if finished == "uninterrupted" else LIVE_STOPPING
    counter = CountTrainingBatches()
    again = MNISTCNNClassifier(
        checkpoint_dir=done.checkpoint_dir, resume=True, callbacks=[counter], **params
    ).fit(*data)
    assert counter.count == 0
    assert again.n_iter_ == done.n_iter_
    assert_same_model(again, done)


def test_resume_keeps_the_early_stopping_state(data, stopped_early, tmp_path):
    """Interrupted the epoch before early stopping would end it, the resumed fit stops where it would have."""
    last = stopped_early.n_iter_ - 1
    with pytest.warns(UserWarning, match=f"interrupted after {last} epochs"):
        MNISTCNNClassifier(checkpoint_dir=tmp_path, callbacks=[InterruptAfter(last)], **LIVE_STOPPING).fit(
            *data
        )
    resumed = MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **LIVE_STOPPING).fit(*data)
    assert resumed.n_iter_ == stopped_early.n_iter_
    # The same best epoch, and its weights restored at the end.
    assert dict(resumed.callbacks_)["early_stopping"].best_epoch_ == (
        dict(stopped_early.callbacks_)["early_stopping"].best_epoch_
    )
    assert_same_model(resumed, stopped_early)


def test_resume_refuses_other_data_or_parameters(data, uninterrupted):
    X, y = data
    with pytest.raises(ValueError, match="other data or with other parameters"):
        MNISTCNNClassifier(checkpoint_dir=uninterrupted.checkpoint_dir, resume=True, **PARAMS).fit(
            X[:-1], y[:-1]
        )
    changed = {**PARAMS, "dropout": 0.3}
    with pytest.raises(ValueError, match="other data or with other parameters"):
        MNISTCNNClassifier(checkpoint_dir=uninterrupted.checkpoint_dir, resume=True, **changed).fit(X, y)


def test_corrupt_checkpoint_is_refused(data, tmp_path):
    (tmp_path / FILENAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable sk_mnist checkpoint"):
        MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **PARAMS).fit(*data)


def test_without_resume_a_checkpoint_is_overwritten(data, uninterrupted, tmp_path):
    (tmp_path / FILENAME).write_bytes(b"stale")
    clf = MNISTCNNClassifier(checkpoint_dir=tmp_path, **PARAMS).fit(*data)
    assert_same_model(clf, uninterrupted)


def test_ctrl_c_keeps_the_best_weights(data):
    clf = MNISTCNNClassifier(callbacks=[InterruptAfter(3)], **PARAMS)
    with pytest.warns(
        UserWarning, match=r"interrupted after 3 epochs; the model keeps the weights of the best epoch"
    ):
        clf.fit(*data)
    stopper = dict(clf.callbacks_)["early_stopping"]
    for name, weights in stopper.best_model_weights_.items():
        assert torch.equal(clf.module_.state_dict()[name], weights)


def test_early_stopping_is_not_reported_as_an_interruption(data, recwarn):
    MNISTCNNClassifier(max_epochs=30, early_stopping=True, n_iter_no_change=1, random_state=0).fit(*data)
    assert not [w for w in recwarn if "interrupted" in str(w.message)]


TRAIN_SCRIPT = """
import sys
from skorch.callbacks import Callback
from sk_mnist import MNISTCNNClassifier, load_mnist

class Report(Callback):
    def on_epoch_end(self, net, **kwargs):
        print("epoch", len(net.history), flush=True)

X, y = load_mnist(return_X_y=True)
MNISTCNNClassifier(max_epochs=int(sys.argv[2]), n_iter_no_change=10, random_state=0,
                   checkpoint_dir=sys.argv[1], callbacks=[Report()]).fit(X[:1500], y[:1500])
print("finished", flush=True)
"""


def test_sigkill_mid_run_loses_at_most_one_epoch(tmp_path, mnist_train):
    max_epochs = 6
    child = subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(tmp_path), str(max_epochs)],
        stdout=subprocess.PIPE,
        text=True,
    )
    completed = 0
    for line in child.stdout:
        completed = int(line.split()[1])
        if completed == 2:
            time.sleep(0.3)  # into the third epoch
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    saved = len(json.loads(torch.load(tmp_path / FILENAME, weights_only=True)["history"]))
    assert completed - saved <= 1 and saved >= 1

    X, y = mnist_train
    resumed = MNISTCNNClassifier(
        max_epochs=max_epochs, n_iter_no_change=10, random_state=0, checkpoint_dir=tmp_path, resume=True
    ).fit(X[:1500], y[:1500])
    assert resumed.history_[:, "epoch"] == list(range(1, max_epochs + 1))
    uninterrupted = MNISTCNNClassifier(max_epochs=max_epochs, n_iter_no_change=10, random_state=0).fit(
        X[:1500], y[:1500]
    )
    np.testing.assert_array_equal(resumed.predict_proba(X[-200:]), uninterrupted.predict_proba(X[-200:]))
