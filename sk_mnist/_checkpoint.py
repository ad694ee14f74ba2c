"""Checkpoints of the whole training state, written after every epoch.

A checkpoint holds what is needed to continue a fit exactly where it stopped:
weights, optimizer, learning-rate schedule, early-stopping state, history,
the random generators' state and the seed the fit started from. It is written
atomically, so a run killed at any moment leaves the last complete epoch, and
it is read with ``torch.load(weights_only=True)``, which executes nothing.
"""

import hashlib
import json
from pathlib import Path

import torch
from skorch.callbacks import Callback
from skorch.history import History

from ._files import atomic_write

FILENAME = "checkpoint.pt"
_FORMAT = 1
# Parameters that do not change what a fit computes, so may differ on resume.
_NOT_FINGERPRINTED = {"callbacks", "checkpoint_dir", "device", "random_state", "resume", "verbose"}


def fingerprint(net, X, y):
    """sha256 of the training data and of the parameters that shape training."""
    digest = hashlib.sha256()
    for tensor in (X, y):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.data)
    params = {k: repr(v) for k, v in net.get_params().items() if k not in _NOT_FINGERPRINTED}
    digest.update(json.dumps(params, sort_keys=True).encode())
    return digest.hexdigest()


def read_checkpoint(dirname, expected_fingerprint):
    """Return the state stored in ``dirname``, None if there is none, or raise if it does not fit."""
    path = Path(dirname) / FILENAME
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        valid = state["format"] == _FORMAT
    except Exception as exc:
        raise ValueError(
            f"{path} is not a readable sk_mnist checkpoint ({exc}). "
            "Delete it, or fit with resume=False, to start afresh."
        ) from exc
    if not valid:
        raise ValueError(f"{path} has an unknown checkpoint format {state['format']!r}.")
    if state["fingerprint"] != expected_fingerprint:
        raise ValueError(
            f"{path} was written by a fit on other data or with other parameters; "
            "resume needs the same data and parameters. Delete it, or fit with "
            "resume=False, to start afresh."
        )
    return state


class TrainingCheckpoint(Callback):
    """Write the training state to ``dirname`` after every epoch; restore it to resume.

    Parameters
    ----------
    dirname : str or path-like
        Folder of the checkpoint file ``checkpoint.pt``; created if needed.
    """

    def __init__(self, dirname):
        self.dirname = dirname

    @property
    def path(self):
        return Path(self.dirname) / FILENAME

    def start(self, net, fingerprint, seed, state=None):
        """Prepare to write checkpoints, first restoring ``state`` if given.

        Returns the number of epochs left to train.
        """
        self.fingerprint_, self.seed_, self.pending_ = fingerprint, seed, state
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if state is None:
            return net.max_epochs
        net.module_.load_state_dict(state["module"])
        net.optimizer_.load_state_dict(state["optimizer"])
        net.history_ = History(json.loads(state["history"]))
        return 0 if state["finished"] else net.max_epochs - len(net.history_)

    def on_train_begin(self, net, **kwargs):
        # The other callbacks have just reset themselves: put their state back.
        state = self.pending_
        if state is None:
            return
        callbacks = dict(net.callbacks_)
        if state["early_stopping"] is not None:
            vars(callbacks["early_stopping"]).update(state["early_stopping"])

    def on_epoch_begin(self, net, **kwargs):
        # The random state is restored only now, after the validation split has
        # been drawn from the freshly seeded generator as in the original run.
        # So is the schedule: it is built as the first epoch begins, setting
        # the optimizer's learning rate, which the saved optimizer state then
        # puts back as it was.
        if self.pending_ is not None:
            scheduler = dict(net.callbacks_).get("lr_scheduler")
            if scheduler is not None:
                net.optimizer_.load_state_dict(self.pending_["optimizer"])
                scheduler.lr_scheduler_.load_state_dict(self.pending_["lr_scheduler"])
            torch.set_rng_state(self.pending_["rng"])
            if self.pending_["cuda_rng"] is not None:
                torch.cuda.set_rng_state_all(self.pending_["cuda_rng"])
            self.pending_ = None

    def on_epoch_end(self, net, **kwargs):
        self._save(net, finished=False)

    def on_train_end(self, net, **kwargs):
        if self.pending_ is not None:  # resumed a finished fit: nothing new to save
            return
        stopper = dict(net.callbacks_).get("early_stopping")
        stopped_early = stopper is not None and stopper.misses_ == stopper.patience
        if stopped_early or len(net.history_) >= net.max_epochs:
            self._save(net, finished=True)

    def _save(self, net, finished):
        callbacks = dict(net.callbacks_)
        stopper = callbacks.get("early_stopping")
        scheduler = callbacks.get("lr_scheduler")
        state = {
            "format": _FORMAT,
            "fingerprint": self.fingerprint_,
            "seed": self.seed_,
            "finished": finished,
            "module": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "history": json.dumps(net.history_.to_list()),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.device(net.device).type == "cuda" else None,
            "early_stopping": None
            if stopper is None
            else {
                "misses_": stopper.misses_,
                "dynamic_threshold_": float(stopper.dynamic_threshold_),
                "best_epoch_": stopper.best_epoch_,
                "best_model_weights_": stopper.best_model_weights_,
            },
            "lr_scheduler": None if scheduler is None else scheduler.lr_scheduler_.state_dict(),
        }
        atomic_write(self.path, lambda fh: torch.save(state, fh))
