"""Progress bars over the epochs of skorch networks, for the progress of a comparison."""

from skorch import NeuralNet
from skorch.callbacks import Callback
from tqdm.auto import tqdm

__all__ = ["EpochProgress", "with_epoch_progress", "without_epoch_progress"]


class EpochProgress(Callback):
    """A skorch callback that advances a progress bar at the end of each epoch.

    The bar counts up to the net's ``max_epochs`` (early stopping may end it
    sooner) and shows the last epoch's validation accuracy when there is one.

    Parameters
    ----------
    desc : str, default="epochs"
        Label of the bar.

    See Also
    --------
    with_epoch_progress : Add this callback to every network inside a model.

    Examples
    --------
    >>> from sk_mnist import MNISTCNNClassifier
    >>> from sk_mnist.report import EpochProgress
    >>> clf = MNISTCNNClassifier(max_epochs=3, callbacks=[("progress", EpochProgress("cnn"))])
    """

    def __init__(self, desc="epochs"):
        self.desc = desc

    def __repr__(self):
        # Shown in the repr of a model fitted with it, as in results.json.
        return f"{type(self).__name__}(desc={self.desc!r})"

    def on_train_begin(self, net, **kwargs):
        """Open a progress bar of ``net.max_epochs`` epochs.

        Parameters
        ----------
        net : skorch.NeuralNet
            The network being trained.
        **kwargs : dict
            Ignored: what skorch passes to every callback (``X``, ``y``).
        """
        self.bar_ = tqdm(total=net.max_epochs, desc=self.desc, unit="epoch", leave=False)

    def on_epoch_end(self, net, **kwargs):
        """Advance the bar by one epoch, showing its validation accuracy if any.

        Parameters
        ----------
        net : skorch.NeuralNet
            The network being trained.
        **kwargs : dict
            Ignored: what skorch passes to every callback (the datasets).
        """
        epoch = net.history[-1]
        if "valid_acc" in epoch:
            self.bar_.set_postfix(valid_acc=f"{epoch['valid_acc']:.4f}", refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        """Close the progress bar.

        Parameters
        ----------
        net : skorch.NeuralNet
            The network that was trained.
        **kwargs : dict
            Ignored: what skorch passes to every callback (``X``, ``y``).
        """
        self.bar_.close()
        # A fitted net is pickled with its callbacks; an open terminal is not picklable.
        del self.bar_


def with_epoch_progress(estimator, desc):
    """Add an :class:`EpochProgress` bar to every skorch network inside a model.

    Networks are found among the model's parameters at any depth: the model
    itself, a pipeline step, an ensemble member.

    Parameters
    ----------
    estimator : estimator
        An unfitted model; changed in place through ``set_params``.
    desc : str
        Label of the bars; members of an ensemble add their own name.

    Returns
    -------
    estimator : estimator
        The same model.

    See Also
    --------
    EpochProgress : The callback.
    without_epoch_progress : Take the bars out again.

    Examples
    --------
    >>> from sk_mnist.baselines import make_baseline
    >>> from sk_mnist.report import with_epoch_progress
    >>> model = with_epoch_progress(make_baseline("cnn_ensemble"), "committee")
    >>> [cb.desc for _, cb in model.get_params()["model__cnn_4__callbacks"]]
    ['committee cnn_4']
    """
    nets = _networks(estimator)
    for prefix, net in nets.items():
        label = desc if len(nets) == 1 else f"{desc} {prefix.rstrip('_').rsplit('__', 1)[-1]}"
        callbacks = [*(net.get_params()["callbacks"] or []), ("epoch_progress", EpochProgress(label))]
        estimator.set_params(**{f"{prefix}callbacks": callbacks})
    return estimator


def without_epoch_progress(estimator):
    """Remove the bars :func:`with_epoch_progress` added, fitted or not.

    The progress bars belong to the fit; a model saved without them keeps no
    terminal state, and :mod:`sk_mnist.persistence` can store it. Only the
    ``callbacks`` parameters change: a fitted model stays fitted.

    Parameters
    ----------
    estimator : estimator
        A model; changed in place through ``set_params``.

    Returns
    -------
    estimator : estimator
        The same model.

    See Also
    --------
    with_epoch_progress : Add the bars.

    Examples
    --------
    >>> from sk_mnist.baselines import make_baseline
    >>> from sk_mnist.report import with_epoch_progress, without_epoch_progress
    >>> model = without_epoch_progress(with_epoch_progress(make_baseline("cnn"), "cnn"))
    >>> model.get_params()["model__callbacks"] is None
    True
    """
    for prefix, net in _networks(estimator).items():
        kept = [
            (name, cb)
            for name, cb in net.get_params()["callbacks"] or []
            if not isinstance(cb, EpochProgress)
        ]
        estimator.set_params(**{f"{prefix}callbacks": kept or None})
    return estimator


def _networks(estimator):
    """The skorch networks inside ``estimator``, keyed by their parameter prefix."""
    nets = {"": estimator} if isinstance(estimator, NeuralNet) else {}
    params = estimator.get_params(deep=True)
    nets.update({f"{key}__": value for key, value in params.items() if isinstance(value, NeuralNet)})
    return nets
