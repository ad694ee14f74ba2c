"""Checkpoints of the whole training state, written after every epoch.

A checkpoint holds what is needed to continue a fit exactly where it stopped:
weights, optimizer, learning-rate schedule, early-stopping state, the moving
average of the weights, history, the random generators' state and the seed the
fit started from. It is written atomically, so a run killed at any moment
leaves the last complete epoch, and it is read with
``torch.load(weights_only=True)``, which executes nothing. A sha256 digest of
its whole content is stored inside it and verified on reading, so a damaged
checkpoint is refused rather than trained from.
"""

import hashlib
import json
import tempfile
from pathlib import Path

import torch
from skorch.callbacks import Callback
from skorch.history import History
from torch.optim.swa_utils import AveragedModel

from ._files import atomic_write

FILENAME = "checkpoint.pt"
# Format 2 added the digest (a format-1 checkpoint has none to verify), format 3
# the moving average of the weights; format 2 is still read, as a fit without one.
_FORMAT = 3
# The entries _save writes; a checkpoint with others or fewer is refused.
_KEYS = frozenset(
    {
        "format",
        "sha256",
        "fingerprint",
        "seed",
        "finished",
        "module",
        "optimizer",
        "history",
        "rng",
        "cuda_rng",
        "early_stopping",
        "lr_scheduler",
        "weight_average",
    }
)
_KEYS_BY_FORMAT = {2: _KEYS - {"weight_average"}, _FORMAT: _KEYS}
# Parameters that do not change what a fit computes, so may differ on resume.
# test_time_augmentation shapes predictions only, never training.
_NOT_FINGERPRINTED = {
    "callbacks",
    "checkpoint_dir",
    "device",
    "random_state",
    "resume",
    "test_time_augmentation",
    "verbose",
}


# How earlier versions fingerprinted a fit, newest first: the parameters they
# did not have yet, with the values that train as those versions did, and
# whether they hashed the per-sample loss weights (which came with
# class_weight). Their checkpoints still resume while the parameters have
# those values and, where the weights were not hashed, the weights are
# uniform. A new parameter that shapes training adds an entry.
_EARLIER_FINGERPRINTS = (
    ({"ema_decay": None}, True),
    ({"ema_decay": None, "class_weight": None}, False),
)


def fingerprints(net, X, y, weights):
    """The fingerprints a checkpoint of this fit may carry: today's first, then earlier versions'.

    Each is the sha256 of the training data (tensors) and of the parameters
    that shape training.
    """
    params = net.get_params()
    data = hashlib.sha256()
    for tensor in (X, y):
        _update_data(data, tensor)
    with_weights = data.copy()
    _update_data(with_weights, weights)
    found = [_with_params(with_weights, params, ())]
    uniform = bool(torch.all(weights == 1))
    for lacked, hashed_weights in _EARLIER_FINGERPRINTS:
        as_then = all(params.get(name, value) == value for name, value in lacked.items())
        if as_then and (hashed_weights or uniform):
            found.append(_with_params(with_weights if hashed_weights else data, params, lacked))
    return found


def _update_data(digest, tensor):
    array = tensor.detach().cpu().contiguous().numpy()
    digest.update(f"{array.dtype}{array.shape}".encode())
    digest.update(array.data)


def _with_params(data_digest, params, lacked):
    """Hex digest of the data so far and of the parameters, but for the untracked and ``lacked`` ones."""
    digest = data_digest.copy()
    kept = {
        k: repr(_as_trained(k, v))
        for k, v in params.items()
        if k not in _NOT_FINGERPRINTED and k not in lacked
    }
    digest.update(json.dumps(kept, sort_keys=True).encode())
    return digest.hexdigest()


def _as_trained(name, value):
    """One spelling per training: ``augment`` of 1.0 (or 0) trains as True (or False) does.

    The bool is the spelling that checkpoints written before ``augment``
    took a share carry.
    """
    if name == "augment" and value in (0, 1):
        return bool(value)
    return value


def state_digest(state):
    """sha256 of a checkpoint's content: its structure, values and tensor bytes.

    Computed on the objects rather than on the file, so it does not depend on
    how torch lays them out; the ``"sha256"`` entry itself is left out.
    """
    digest = hashlib.sha256()
    _update(digest, {key: value for key, value in state.items() if key != "sha256"})
    return digest.hexdigest()


def _update(digest, value):
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}:".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)}:".encode())
        for key, item in value.items():
            _update(digest, key)
            _update(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__} {len(value)}:".encode())
        for item in value:
            _update(digest, item)
    else:
        # str, int, float, bool, None: a repr is unambiguous and exact.
        digest.update(f"{type(value).__name__} {value!r};".encode())


def read_checkpoint(dirname, accepted_fingerprints):
    """Return the state stored in ``dirname``, None if there is none, or raise if it does not fit.

    The checkpoint fits when its fingerprint is one of ``accepted_fingerprints``
    (a list, see :func:`fingerprints`).
    """
    if not isinstance(accepted_fingerprints, list):
        # A string would be searched for substrings.
        raise TypeError(f"accepted_fingerprints must be a list; got {type(accepted_fingerprints).__name__}")
    path = Path(dirname) / FILENAME
    if not path.exists():
        return None
    afresh = "Delete it, or fit with resume=False, to start afresh."
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable sk_mnist checkpoint ({exc}). {afresh}") from exc
    if not isinstance(state, dict) or "format" not in state:
        raise ValueError(f"{path} is not a readable sk_mnist checkpoint (no format entry). {afresh}")
    keys = _KEYS_BY_FORMAT.get(state["format"]) if type(state["format"]) is int else None
    if keys is None:
        raise ValueError(
            f"{path} has an unknown checkpoint format {state['format']!r}; this sk_mnist "
            f"reads formats {sorted(_KEYS_BY_FORMAT)}. {afresh}"
        )
    if state.keys() != keys:
        raise ValueError(
            f"{path} is not a complete sk_mnist checkpoint: missing entries "
            f"{sorted(keys - state.keys())}, unexpected entries {sorted(map(repr, state.keys() - keys))}. "
            f"{afresh}"
        )
    if state["sha256"] != state_digest(state):
        raise ValueError(
            f"{path} fails its sha256 check: the checkpoint was damaged or modified after "
            f"it was written. {afresh}"
        )
    if state["fingerprint"] not in accepted_fingerprints:
        raise ValueError(
            f"{path} was written by a fit on other data or with other parameters; "
            f"resume needs the same data and parameters. {afresh}"
        )
    return {"weight_average": None, **state}


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

    def _check_writable(self):
        """Refuse, before any training, a folder the checkpoints could not be written to.

        Creating the folder is not enough of a test: ``mkdir`` succeeds on an
        existing read-only folder, and the first save would fail only after
        an epoch's work.
        """
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise ValueError(f"checkpoint_dir {str(folder)!r} cannot hold checkpoints: {exc}") from exc

    def start(self, net, fingerprint, seed, state=None):
        """Prepare to write checkpoints, first restoring ``state`` if given.

        Returns the number of epochs left to train.
        """
        self.fingerprint_, self.seed_, self.pending_ = fingerprint, seed, state
        self._check_writable()
        self._remove_stale_temporaries()
        if state is None:
            return net.max_epochs
        try:
            net.module_.load_state_dict(state["module"])
            net.optimizer_.load_state_dict(state["optimizer"])
            net.history_ = History(json.loads(state["history"]))
            if state["weight_average"] is not None:
                # Checked now, before any training; on_train_begin restores it
                # into the average that the weight_average callback builds.
                if "weight_average" not in dict(net.callbacks_):
                    raise ValueError("it holds a moving average of the weights, but ema_decay is None")
                AveragedModel(net.module_, use_buffers=True).load_state_dict(state["weight_average"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{self.path} does not fit the network being trained ({exc}). "
                "Delete it, or fit with resume=False, to start afresh."
            ) from exc
        return 0 if state["finished"] else net.max_epochs - len(net.history_)

    def _remove_stale_temporaries(self):
        # A fit killed while writing leaves atomic_write's temporary file
        # (".checkpoint.pt.<random>.tmp") behind; the checkpoint itself is intact.
        for stale in self.path.parent.glob(f".{FILENAME}.*.tmp"):
            stale.unlink(missing_ok=True)

    def on_train_begin(self, net, **kwargs):
        # The other callbacks have just reset themselves: put their state back.
        state = self.pending_
        if state is None:
            return
        callbacks = dict(net.callbacks_)
        if state["early_stopping"] is not None:
            vars(callbacks["early_stopping"]).update(state["early_stopping"])
        if state["weight_average"] is not None:
            callbacks["weight_average"].average_.load_state_dict(state["weight_average"])

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
        average = callbacks.get("weight_average")
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
            "weight_average": None if average is None else average.average_.state_dict(),
        }
        state["sha256"] = state_digest(state)
        atomic_write(self.path, lambda fh: torch.save(state, fh))
