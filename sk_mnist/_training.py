"""Training plumbing for the skorch-based estimators.

In-memory batches instead of a per-sample ``DataLoader``, the stratified
validation split, the seeded random state of a fit, and the callbacks that
make up the training recipe (all of them skorch's own).
"""

import math
import os
import sys
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.model_selection import StratifiedShuffleSplit
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    EpochScoring,
    EpochTimer,
    LRScheduler,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
)
from skorch.utils import to_numpy
from torch.optim.lr_scheduler import OneCycleLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ._checkpoint import TrainingCheckpoint

#: Images per batch when no gradient is needed (validation and prediction):
#: large enough for the convolutions to run at full speed, small enough that
#: memory stays bounded.
INFERENCE_BATCH_SIZE = 256

#: Callbacks that belong to a whole fit, not to one partial_fit epoch.
FIT_ONLY_CALLBACKS = (
    "valid_loss",
    "valid_acc",
    "early_stopping",
    "lr_scheduler",
    "weight_average",
    "checkpoint",
)


def resolve_device(device):
    """Map ``"auto"`` to CUDA when available, else CPU; pass anything else on."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def check_device(device, owner):
    """Refuse, before any work, a device torch does not know or this machine does not have."""
    if device == "auto":
        return
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"The 'device' parameter of {owner} must be 'auto' or a torch device such as 'cpu' or "
            f"'cuda:0'; got {device!r}."
        ) from None
    # The accelerators this machine may lack; any other type (the CPU, "meta")
    # is torch's to judge when the first tensor moves there.
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, True):
        raise ValueError(
            f"The 'device' parameter of {owner} is {str(device)!r}, but this machine has no "
            f"{device.type} device; use 'auto' to take one when present and the CPU otherwise."
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(
            f"The 'device' parameter of {owner} is {str(device)!r}, but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s)."
        )


def resolve_precision(precision, device):
    """Map ``"auto"`` to bfloat16 where the device computes it natively, else float32."""
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
    else:
        # oneDNN's own test for bfloat16 instructions (AVX512-BF16, AMX): without
        # them, bfloat16 is emulated and slower than float32.
        native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return "bfloat16" if native else "float32"


class InMemoryBatches:
    """Iterate over mini-batches of tensors held in memory.

    A whole batch is one indexing operation on the stored tensors, where
    PyTorch's ``DataLoader`` would index and collate sample by sample. Each
    pass over a shuffled iterator draws a new permutation from torch's
    random number generator.

    Parameters
    ----------
    dataset : skorch.dataset.Dataset
        Holds a tensor ``X`` and, as ``y``, None (data to predict) or a tuple
        of tensors (training data: class indices and sample weights).
    batch_size : int
        Samples per batch; the last batch may be smaller.
    shuffle : bool
        Whether to visit the samples in a new random order on every pass.
    device : str or torch.device
        Where batches are delivered.
    """

    def __init__(self, dataset, batch_size, shuffle, device):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device

    def __len__(self):
        return math.ceil(len(self.dataset) / self.batch_size)

    def __iter__(self):
        X, y = self.dataset.X, self.dataset.y
        n = len(self.dataset)
        order = torch.randperm(n, device=X.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            rows = (
                slice(start, start + self.batch_size)
                if order is None
                else order[start : start + self.batch_size]
            )
            yield (
                X[rows].to(self.device, non_blocking=True),
                None if y is None else tuple(part[rows].to(self.device, non_blocking=True) for part in y),
            )


def stratified_split(y, fraction, generator_seed):
    """Indices of a stratified train/validation split, or None if impossible.

    The split needs at least two samples of every class and room for one of
    each class on both sides.
    """
    _, counts = np.unique(y, return_counts=True)
    n_valid = math.ceil(fraction * len(y))
    n_classes = len(counts)
    if counts.min() < 2 or n_valid < n_classes or len(y) - n_valid < n_classes:
        return None
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_valid, random_state=generator_seed)
    return next(splitter.split(np.zeros(len(y)), y))


def _targets_and_weights(y):
    """A batch's ``(class indices, sample weights)`` as the columns of one array."""
    return np.column_stack([to_numpy(part) for part in y])


def _valid_accuracy(net, X, y):
    """Weighted accuracy on the validation set's labelled samples.

    ``y`` is as :func:`_targets_and_weights` makes it; a class index of -1
    marks an unlabelled sample (see ``DistilledCNNClassifier``).
    """
    # With skorch's caching, ``forward`` returns the logits the validation
    # step already computed: scoring costs no second pass.
    labelled = y[:, 0] >= 0
    predicted = to_numpy(net.forward(X)).argmax(axis=1)[labelled]
    targets, weights = y[labelled, 0], y[labelled, 1]
    # A validation set whose every sample has weight 0 is scored unweighted.
    return float(np.average(predicted == targets, weights=weights if weights.any() else None))


class OneCycleSchedule(LRScheduler):
    """skorch's ``LRScheduler`` running torch's ``OneCycleLR``, one step per training batch.

    The rate warms up from ``max_lr / 25`` to ``max_lr`` over the first
    quarter of the steps, then anneals to nearly zero (Smith and Topin 2019). The
    scheduler must know how many steps it will take, ``epochs`` times the
    batches of the training split; that split exists only once skorch's fit
    loop has drawn it, so the scheduler is built as the first epoch begins.

    Parameters
    ----------
    max_lr : float
        The peak learning rate.
    epochs : int
        Epochs over which the cycle runs.
    """

    def __init__(self, max_lr, epochs):
        super().__init__(
            OneCycleLR,
            step_every="batch",
            max_lr=max_lr,
            epochs=epochs,
            pct_start=0.25,
            # The schedule moves the learning rate only: Adam's betas stay
            # what the user set (``optimizer__betas``).
            cycle_momentum=False,
        )

    def on_train_begin(self, net, **kwargs):
        self.lr_scheduler_ = None

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        if self.lr_scheduler_ is None:
            steps = len(net.get_iterator(dataset_train, training=True))
            kwargs = self.kwargs
            if kwargs["pct_start"] * kwargs["epochs"] * steps == 1:
                # OneCycleLR divides by zero when its warm-up is a single step.
                kwargs["pct_start"] = 0.5
            self.lr_scheduler_ = self.policy_(net.optimizer_, steps_per_epoch=steps, **kwargs)


class WeightAverage(Callback):
    """An exponential moving average of the weights, which the network takes at the end.

    After every training batch, each weight and batch-norm statistic of the
    average moves towards the network's by ``1 - decay`` (torch's
    ``AveragedModel`` with ``get_ema_multi_avg_fn``); the first batch's
    weights start it. When training ends, the network takes the average's
    values. Batch-norm statistics are averaged with the weights, so they
    belong to the averaged network without a pass over the data.

    Parameters
    ----------
    decay : float
        Share of the average kept at each step, in [0, 1).
    """

    def __init__(self, decay):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.average_ = AveragedModel(
            net.module_, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
        )

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.average_.update_parameters(net.module_)

    def on_train_end(self, net, **kwargs):
        net.module_.load_state_dict(self.average_.module.state_dict())


class EpochTable(PrintLog):
    """skorch's table of epochs, in colour only on a terminal.

    skorch marks each epoch's best scores with ANSI colour codes; in a log
    file or a CI log they are noise. The colours are kept where standard
    output is a terminal and the ``NO_COLOR`` environment variable is unset
    or empty (https://no-color.org).
    """

    def format_row(self, row, key, color):
        """Format one value of an epoch's row, coloured where standard output is a terminal.

        Parameters
        ----------
        row : dict
            The epoch's entry of the history.
        key : str
            The column to format.
        color : str
            The ANSI colour code skorch uses for the column.

        Returns
        -------
        value : str
            The formatted value.
        """
        if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
            # Without a "<key>_best" flag, skorch colours nothing.
            row = {name: value for name, value in row.items() if name != f"{key}_best"}
        return super().format_row(row, key, color)


def recipe_callbacks(net):
    """The callbacks that implement an estimator's training recipe.

    Parameters
    ----------
    net : MNISTCNNClassifier
        Supplies the parameters: ``early_stopping``, ``n_iter_no_change``,
        ``max_epochs``, ``lr``, ``ema_decay``, ``checkpoint_dir`` and ``verbose``.

    Returns
    -------
    callbacks : list of (str, skorch.callbacks.Callback)
    """
    callbacks = [
        ("epoch_timer", EpochTimer()),
        ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
    ]
    if net.early_stopping:
        callbacks += [
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            (
                "valid_acc",
                EpochScoring(
                    _valid_accuracy,
                    name="valid_acc",
                    lower_is_better=False,
                    target_extractor=_targets_and_weights,
                ),
            ),
            (
                "early_stopping",
                EarlyStopping(
                    monitor="valid_acc", lower_is_better=False, patience=net.n_iter_no_change, load_best=True
                ),
            ),
        ]
    callbacks.append(("lr_scheduler", OneCycleSchedule(net.lr, net.max_epochs)))
    # After early stopping, whose best-epoch weights the average then replaces.
    if net.ema_decay is not None:
        callbacks.append(("weight_average", WeightAverage(net.ema_decay)))
    # After early stopping and the schedule, so that it saves their updated state.
    if net.checkpoint_dir is not None:
        callbacks.append(("checkpoint", TrainingCheckpoint(net.checkpoint_dir)))
    if net.verbose >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    if net.verbose:
        callbacks.append(("print_log", EpochTable()))
    return callbacks


@contextmanager
def seeded(seed, device):
    """Run the block with torch's generators seeded, and restore them afterwards.

    Everything random in a fit (weight initialization, dropout, shuffling,
    augmentation, the validation split) draws from these generators, so a seed
    makes a fit reproducible without touching the caller's random state.
    On CUDA, cuDNN is held to deterministic algorithms for the block.
    """
    device = torch.device(device)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with (
        torch.random.fork_rng(devices=cuda_devices),
        torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True),
    ):
        torch.manual_seed(seed)
        yield
