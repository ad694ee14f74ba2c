"""Checkpoints that survive a kill, resume that loses at most one epoch, and Ctrl-C."""

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import InterruptAfter, assert_same_weights
from sklearn.datasets import load_digits
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History

from sk_mnist import MNISTCNNClassifier
from sk_mnist._checkpoint import FILENAME, TrainingCheckpoint, fingerprints, read_checkpoint, state_digest

PARAMS = dict(max_epochs=4, early_stopping=True, n_iter_no_change=10, random_state=0)
# Early stopping that ends the fit well before max_epochs.
LIVE_STOPPING = {"max_epochs": 10, "early_stopping": True, "n_iter_no_change": 1, "random_state": 0}


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
    assert_same_weights(a, b)
    assert a.history_[:, "valid_acc"] == b.history_[:, "valid_acc"]


def test_checkpoint_written_every_epoch(uninterrupted):
    state = torch.load(uninterrupted.checkpoint_dir / FILENAME, weights_only=True)
    assert state["finished"] is True and len(json.loads(state["history"])) == 4
    assert not list(uninterrupted.checkpoint_dir.glob("*.tmp"))
    # Only a fit on a GPU has CUDA generators whose state is worth saving.
    assert (state["cuda_rng"] is None) == (torch.device(uninterrupted.device).type != "cuda")


def test_resume_continues_as_if_never_interrupted(data, uninterrupted, tmp_path):
    with pytest.warns(UserWarning, match="interrupted after 2 epochs"):
        MNISTCNNClassifier(checkpoint_dir=tmp_path, callbacks=[InterruptAfter(2)], **PARAMS).fit(*data)
    state = torch.load(tmp_path / FILENAME, weights_only=True)
    assert state["finished"] is False and len(json.loads(state["history"])) == 2
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


class RecordValidationRows(Callback):
    """Record the validation images of the first epoch of a run."""

    def on_epoch_begin(self, net, dataset_valid=None, **kwargs):
        if not hasattr(self, "rows_"):
            self.rows_ = dataset_valid.X.cpu().numpy()


def test_resume_without_random_state_validates_on_the_original_split(data, tmp_path):
    """A fresh seed each run, yet the resumed run holds out the rows the interrupted one did.

    Both runs are the same command, ``resume=True``: with no checkpoint yet, the first starts afresh.
    """
    params = {**PARAMS, "random_state": None, "checkpoint_dir": tmp_path, "resume": True}
    first, resumed, fresh = RecordValidationRows(), RecordValidationRows(), RecordValidationRows()
    with pytest.warns(UserWarning, match="interrupted after 1 epoch;"):
        MNISTCNNClassifier(callbacks=[InterruptAfter(1), first], **params).fit(*data)
    MNISTCNNClassifier(callbacks=[resumed], **params).fit(*data)
    np.testing.assert_array_equal(resumed.rows_, first.rows_)
    # the control: a run that does not resume draws another split
    MNISTCNNClassifier(callbacks=[fresh], **{**params, "resume": False}).fit(*data)
    assert not np.array_equal(np.sort(fresh.rows_, axis=0), np.sort(first.rows_, axis=0))


def test_resume_refuses_other_data_or_parameters(data, uninterrupted):
    X, y = data
    with pytest.raises(ValueError, match="other data or with other parameters"):
        MNISTCNNClassifier(checkpoint_dir=uninterrupted.checkpoint_dir, resume=True, **PARAMS).fit(
            X[:-1], y[:-1]
        )
    for changed in ({**PARAMS, "dropout": 0.3}, {**PARAMS, "augment": 0.5}):
        with pytest.raises(ValueError, match="other data or with other parameters"):
            MNISTCNNClassifier(checkpoint_dir=uninterrupted.checkpoint_dir, resume=True, **changed).fit(X, y)


@pytest.mark.parametrize("augment", [1.0, 1])
def test_a_share_of_one_resumes_a_checkpoint_of_augment_true(data, uninterrupted, augment):
    """augment=1.0 trains as augment=True (the fixture's default) does, so its checkpoint resumes."""
    counter = CountTrainingBatches()
    again = MNISTCNNClassifier(
        checkpoint_dir=uninterrupted.checkpoint_dir,
        resume=True,
        callbacks=[counter],
        **PARAMS,
        augment=augment,
    ).fit(*data)
    assert counter.count == 0
    assert_same_model(again, uninterrupted)


def test_no_augmentation_has_one_fingerprint_however_spelt(data):
    X, y = (torch.as_tensor(a) for a in data)
    weights = torch.ones(len(y))
    spelt = [
        fingerprints(MNISTCNNClassifier(augment=augment, **PARAMS), X, y, weights)
        for augment in (False, 0, 0.0)
    ]
    assert spelt[0] == spelt[1] == spelt[2]
    assert fingerprints(MNISTCNNClassifier(augment=0.25, **PARAMS), X, y, weights) != spelt[0]


def test_corrupt_checkpoint_is_refused(data, tmp_path):
    (tmp_path / FILENAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable sk_mnist checkpoint"):
        MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **PARAMS).fit(*data)


def test_a_refused_resume_leaves_nothing_for_partial_fit(data, tmp_path):
    """The failed fit had begun its rehearsal buffer; the first partial_fit starts its own."""
    X, y = data
    (tmp_path / FILENAME).write_bytes(b"not a checkpoint")
    clf = MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **PARAMS)
    with pytest.raises(ValueError, match="not a readable sk_mnist checkpoint"):
        clf.fit(X, y)
    clf.set_params(checkpoint_dir=None, resume=False).partial_fit(X[:100], y[:100])
    assert clf.n_samples_seen_ == 100
    np.testing.assert_array_equal(np.sort(clf.rehearsal_y_), np.sort(y[:100]))


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


# Checkpoints written by earlier commits, each of a fit interrupted after 2 of
# its 4 epochs: MNISTCNNClassifier(checkpoint_dir=..., **OLD_FIT) on
# OLD_FIT_DATA, with a callback that raised KeyboardInterrupt. 3300821 wrote the
# first format-2 checkpoints, before class_weight and sample weights; b375d0f
# the last before ema_decay. Their fingerprints lack what came later.
DATA = Path(__file__).parent / "data"
OLD_FIT = dict(
    architecture="lenet",
    module__widths=(2, 3),
    module__hidden_units=8,
    precision="float32",
    max_epochs=4,
    random_state=0,
)


@pytest.fixture(scope="module")
def old_fit_data():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.mark.parametrize("commit", ["3300821", "b375d0f"])
def test_checkpoints_of_earlier_versions_resume(commit, old_fit_data, tmp_path):
    shutil.copy(DATA / f"checkpoint-{commit}.pt", tmp_path / FILENAME)
    written = torch.load(tmp_path / FILENAME, weights_only=True)
    assert written["format"] == 2 and written["finished"] is False
    resumed = MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **OLD_FIT).fit(*old_fit_data)
    assert resumed.history_[:, "epoch"] == [1, 2, 3, 4]
    assert resumed.history_[:2, "train_loss"] == [row["train_loss"] for row in json.loads(written["history"])]
    # It went on from the stored weights: its last epochs train as a fit
    # from scratch does (up to the float rounding of another processor).
    fresh = MNISTCNNClassifier(**OLD_FIT).fit(*old_fit_data)
    for ours, theirs in zip(
        resumed.module_.state_dict().values(), fresh.module_.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-5)
    # The checkpoints written on the way carry today's fingerprint.
    again = torch.load(tmp_path / FILENAME, weights_only=True)
    assert again["format"] == 3 and again["fingerprint"] != written["fingerprint"]


@pytest.mark.parametrize(
    ("commit", "change"),
    [
        ("b375d0f", {"ema_decay": 0.9}),
        ("3300821", {"ema_decay": 0.9}),
        ("3300821", {"class_weight": "balanced"}),
        ("3300821", {"sample_weight": "uneven"}),
        ("b375d0f", {"max_epochs": 5}),
    ],
)
def test_checkpoints_of_earlier_versions_are_refused_for_fits_they_could_not_have_been(
    commit, change, old_fit_data, tmp_path
):
    shutil.copy(DATA / f"checkpoint-{commit}.pt", tmp_path / FILENAME)
    X, y = old_fit_data
    fit_params = {}
    if change.pop("sample_weight", None):
        fit_params["sample_weight"] = np.where(y == 0, 2.0, 1.0)
    clf = MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **{**OLD_FIT, **change})
    with pytest.raises(ValueError, match="was written by a fit on other data or with other parameters"):
        clf.fit(X, y, **fit_params)


class AveragingByDefault(MNISTCNNClassifier):
    """A subclass whose own default averages the weights."""

    def __init__(self, ema_decay=0.9, **kwargs):
        super().__init__(ema_decay=ema_decay, **kwargs)


def test_checkpoints_of_earlier_versions_follow_how_they_trained_not_a_default(old_fit_data, tmp_path):
    # b375d0f trained without an average, whatever a class's default says.
    shutil.copy(DATA / "checkpoint-b375d0f.pt", tmp_path / FILENAME)
    with pytest.raises(ValueError, match="was written by a fit on other data or with other parameters"):
        AveragingByDefault(checkpoint_dir=tmp_path, resume=True, **OLD_FIT).fit(*old_fit_data)
    resumed = AveragingByDefault(ema_decay=None, checkpoint_dir=tmp_path, resume=True, **OLD_FIT)
    assert resumed.fit(*old_fit_data).history_[:, "epoch"] == [1, 2, 3, 4]


def test_accepted_fingerprints_must_be_a_list(tmp_path):
    with pytest.raises(TypeError, match="accepted_fingerprints must be a list; got str"):
        read_checkpoint(tmp_path, "a fingerprint")


def test_state_digest_follows_format_2():
    """The digest is part of format 2: checkpoints already written must keep verifying.

    Format 2 hashes the entries other than "sha256", in order, each value
    announced by its kind: a dict or a list/tuple by its type and length, a
    tensor by its dtype and shape followed by its bytes, anything else by its
    type and repr.
    """
    state = {
        "format": 2,
        "sha256": "not hashed",
        "finished": False,
        "cuda_rng": None,
        "rng": torch.tensor([7, 255], dtype=torch.uint8),
        "module": OrderedDict(w=torch.tensor([[1.5, -2.0]])),
        "betas": (0.9, 0.999),
        "params": [0, 1],
    }
    stream = b"".join(
        [
            b"dict 7:",
            b"str 'format';int 2;",
            b"str 'finished';bool False;",
            b"str 'cuda_rng';NoneType None;",
            b"str 'rng';tensor torch.uint8 (2,):\x07\xff",
            b"str 'module';dict 1:str 'w';tensor torch.float32 (1, 2):" + struct.pack("=ff", 1.5, -2.0),
            b"str 'betas';tuple 2:float 0.9;float 0.999;",
            b"str 'params';list 2:int 0;int 1;",
        ]
    )
    assert state_digest(state) == hashlib.sha256(stream).hexdigest()
    # So the kind of a container counts, not only its items.
    assert state_digest({"betas": (0.9, 0.999)}) != state_digest({"betas": [0.9, 0.999]})


class StandIn(SimpleNamespace):
    """Just what TrainingCheckpoint and skorch's EarlyStopping use of a network."""

    @property
    def history(self):
        return self.history_


def stand_in_net(device="cpu", callbacks=()):
    module = torch.nn.Linear(2, 2)
    return StandIn(
        device=device,
        max_epochs=10,
        verbose=0,
        callbacks_=list(callbacks),
        module_=module,
        optimizer_=torch.optim.SGD(module.parameters(), lr=0.1),
        history_=History(),
    )


def test_cuda_generator_state_is_saved_and_restored_on_a_gpu(tmp_path, monkeypatch):
    """A fit on CUDA saves the CUDA generators' state with each checkpoint, and a resumed fit restores it.

    Simulated, so that it runs without a GPU: a stand-in network on "cuda:0"
    and torch.cuda's generator functions replaced.
    """
    cuda_state = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: cuda_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    net = stand_in_net(device="cuda:0")
    net.history_.new_epoch()

    writer = TrainingCheckpoint(tmp_path)
    writer.start(net, "the fingerprint", 0)
    writer.on_epoch_end(net)
    state = read_checkpoint(tmp_path, ["the fingerprint"])
    assert len(state["cuda_rng"]) == 2
    assert all(torch.equal(saved, original) for saved, original in zip(state["cuda_rng"], cuda_state))

    reader = TrainingCheckpoint(tmp_path)
    with torch.random.fork_rng(devices=[]):
        assert reader.start(stand_in_net(device="cuda:0"), "the fingerprint", 0, state) == 9
        reader.on_train_begin(net)
        reader.on_epoch_begin(net)
    assert len(restored) == 1 and len(restored[0]) == 2
    assert all(torch.equal(back, original) for back, original in zip(restored[0], cuda_state))


def test_resume_restores_every_part_of_the_early_stopping_state(tmp_path):
    """Stopped two misses into a patience of three, a resumed fit stops at the next miss.

    Validation accuracies 0.5, 0.7, 0.6, 0.65: the best epoch is the second,
    and a fifth epoch scoring 0.69 is a third miss. Each epoch's weights are
    filled with its number, so the best epoch's are recognisable.
    """
    stopper = EarlyStopping(monitor="valid_acc", lower_is_better=False, patience=3, load_best=True)
    net = stand_in_net(callbacks=[("early_stopping", stopper)])
    writer = TrainingCheckpoint(tmp_path)
    writer.start(net, "the fingerprint", 0)
    stopper.on_train_begin(net)
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.65], start=1):
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        net.history.record("valid_acc", score)
        with torch.no_grad():
            net.module_.weight.fill_(epoch)
        stopper.on_epoch_end(net)
        writer.on_epoch_end(net)

    fresh = EarlyStopping(monitor="valid_acc", lower_is_better=False, patience=3, load_best=True)
    resumed = stand_in_net(callbacks=[("early_stopping", fresh)])
    reader = TrainingCheckpoint(tmp_path)
    with torch.random.fork_rng(devices=[]):
        assert (
            reader.start(resumed, "the fingerprint", 0, read_checkpoint(tmp_path, ["the fingerprint"])) == 6
        )
        fresh.on_train_begin(resumed)  # resets itself, as at the start of every fit
        reader.on_train_begin(resumed)
    assert (fresh.misses_, fresh.best_epoch_) == (2, 2)
    assert torch.equal(fresh.best_model_weights_["weight"], torch.full((2, 2), 2.0))
    resumed.history.new_epoch()
    resumed.history.record("epoch", 5)
    resumed.history.record("valid_acc", 0.69)
    with pytest.raises(KeyboardInterrupt):  # skorch's way of stopping the fit
        fresh.on_epoch_end(resumed)
