"""MNISTCNNClassifier: a convolutional network as a scikit-learn classifier."""

import os
import warnings
from collections import OrderedDict
from functools import partial
from inspect import signature
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from skorch import NeuralNetClassifier
from skorch.dataset import Dataset, unpack_data
from skorch.utils import to_tensor
from torch import nn

from ._checkpoint import fingerprints, read_checkpoint
from ._docs import DocLinkMixin
from ._images import canvas_shape, validate_images
from ._labels import check_label_kind
from ._training import (
    FIT_ONLY_CALLBACKS,
    INFERENCE_BATCH_SIZE,
    InMemoryBatches,
    check_device,
    recipe_callbacks,
    resolve_device,
    resolve_precision,
    seeded,
    stratified_split,
)
from .modules import ARCHITECTURES, ImageView, RandomAffine, Standardize, expand_output, tta_views
from .preprocessing import _pixel_statistics

__all__ = ["MNISTCNNClassifier"]


class MNISTCNNClassifier(DocLinkMixin, NeuralNetClassifier):
    """A convolutional neural network classifier for handwritten digits.

    A scikit-learn classifier around a PyTorch CNN, trained by skorch. Its
    defaults are a complete recipe for MNIST, built to train in under a
    minute on two CPU cores: a thin three-stage network with batch
    normalization (after pooling) and dropout, label smoothing, Adam with L2 weight decay
    under a one-cycle learning-rate schedule (warm-up, then annealing, every
    batch), random rotations, scalings and shifts of the training images, and
    bfloat16 arithmetic where the processor computes it natively.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    architecture : {"fast", "small", "lenet", "deep"} or nn.Module class, default="fast"
        The network: "fast" (:class:`~sk_mnist.modules.FastCNN`, three thin
        stages with pooling first, the fastest), "small"
        (:class:`~sk_mnist.modules.SmallCNN`, the distillation student),
        "lenet" (:class:`~sk_mnist.modules.LeNet`) or "deep"
        (:class:`~sk_mnist.modules.DeepCNN`, the most accurate, at several
        times the cost of an epoch of "fast").
        A class is called as ``architecture(n_classes=..., in_channels=...,
        dropout=..., batch_norm=..., **module__params)`` and must map
        ``(n, in_channels, 28, 28)`` images to logits.

    dropout : float, default=0.1
        Dropout probability before the network's output layer.

    batch_norm : bool, default=True
        Whether to put batch normalization after each convolution.

    augment : bool or float in [0, 1], default=True
        Whether to randomly rotate (within +-15 degrees), scale (0.9-1.1) and
        shift (the sampling grid by up to a tenth of the side) each training
        image in every epoch; see :class:`~sk_mnist.modules.RandomAffine`. A
        float is the probability that an image is transformed in an epoch,
        the others training as they are: ``True`` is 1.0, ``False`` 0.0.

    test_time_augmentation : bool, default=False
        Whether the fitted network's predictions average the class
        probabilities of each image and of four fixed variants of it: rotated
        by +-5 degrees and scaled by 0.95 and 1.05 about its centre (see
        :func:`~sk_mnist.modules.tta_views`), at five times the cost of a
        prediction. It applies to :meth:`predict_proba`, :meth:`predict` and
        :meth:`score`, not to the validation scores of ``early_stopping``:
        training does not depend on it, so it may be switched with
        ``set_params`` after fitting. ONNX export
        (:func:`~sk_mnist.export.to_onnx`) refuses it.

    lr : float, default=6e-3
        Peak learning rate of the one-cycle schedule: training starts at
        ``lr / 25``, warms up to ``lr`` over the first quarter of the
        ``max_epochs`` epochs and anneals to nearly zero by their end, a step
        after every batch. :meth:`partial_fit` trains at ``lr`` throughout.

    weight_decay : float, default=1e-4
        L2 penalty passed to the optimizer.

    label_smoothing : float, default=0.1
        Share of each training label's probability spread evenly over all
        classes in the cross-entropy loss (Szegedy et al. 2016). It keeps the
        network from driving its logits apart without end; the predicted
        probabilities are correspondingly less extreme (the most likely class
        gets about 0.9 rather than 0.999). 0 trains on the bare labels.

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn's classifiers:
        ``{label: weight}`` (classes not named weigh 1), "balanced" (weights
        inversely proportional to the classes' frequencies in ``y``, as
        ``n_samples / (n_classes * np.bincount(y))``; not available in
        :meth:`partial_fit`) or None (all classes weigh 1). They multiply the
        ``sample_weight`` of :meth:`fit` and :meth:`partial_fit`.

    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        The optimizer. Adam gets ``eps=1e-7``; further arguments go through
        ``optimizer__<name>`` parameters, e.g. ``optimizer__betas=(0.9, 0.99)``.

    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the training passes. "bfloat16" runs the network's
        forward pass (and so its backward pass) under PyTorch's bfloat16
        autocast, with weights, optimizer and loss in float32; "auto" chooses
        it where the device computes bfloat16 natively (CPUs with AVX512-BF16
        or AMX, CUDA GPUs from Ampere on) and float32 elsewhere. Prediction
        and validation always run in float32. So a fit with "auto" is
        reproducible on one machine, not across machines of different kinds.

    batch_size : int, default=256
        Samples per training mini-batch.

    max_epochs : int, default=12
        Passes over the training data: the length of the learning-rate
        schedule, and the most epochs run.

    ema_decay : float, default=None
        If set, ``fit`` keeps an exponential moving average of the weights
        (and batch-norm statistics), moving each towards the network's by
        ``1 - ema_decay`` after every training batch, and the fitted network
        takes the average's values at the end (after ``early_stopping`` has
        restored its best epoch, whose weights the average then replaces).
        0.999 averages over about the last thousand steps. None keeps the
        network's own last weights; ``partial_fit`` always does.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data
        (stratified), stop when validation accuracy has not improved for
        ``n_iter_no_change`` epochs, and restore the weights of the best epoch.
        When the data are too few to hold out every class (fewer than two
        samples of some class), the training data double as validation data.
        False trains on all the data through the whole learning-rate
        schedule and keeps the last epoch's weights, where the schedule has
        annealed the rate to nearly zero.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping`` is on.

    n_iter_no_change : int, default=5
        Epochs without improvement of validation accuracy before stopping.

    rehearsal_size : int, default=8000
        Number of earlier training samples kept (a uniform sample of all seen,
        in ``rehearsal_X_``) and mixed into every :meth:`partial_fit` epoch, so
        that learning new data, or new classes, does not erase the old. 0 keeps
        none.

    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Callbacks to run in addition to those of the recipe.

    checkpoint_dir : str or path-like, default=None
        If given, the whole training state (weights, optimizer, learning-rate
        schedule, early-stopping state, random generators, history) is written
        atomically to ``checkpoint_dir/checkpoint.pt`` at the end of every epoch.

    resume : bool, default=False
        With ``checkpoint_dir``: if a checkpoint is there, ``fit`` continues
        from its last complete epoch to ``max_epochs`` instead of starting
        afresh, and ends as the uninterrupted fit would have. The checkpoint
        must come from the same data and parameters (checked by a
        fingerprint); otherwise ``fit`` raises ``ValueError``.

    device : str or torch.device, default="auto"
        Where to train and predict: ``"auto"`` picks CUDA when it is available
        and the CPU otherwise; reading the ``device`` attribute gives the
        device in use.

    verbose : int, default=0
        0 is silent; 1 prints skorch's table of epochs (train loss, validation
        accuracy and loss, duration); 2 adds a progress bar over batches.

    random_state : int, RandomState instance or None, default=None
        Seeds everything random in a fit: initial weights, dropout, shuffling,
        augmentation and the validation split. An int makes fits reproducible
        bit for bit on the CPU.

    **kwargs : dict
        Routed parameters, in skorch's style: ``module__<name>`` for the network
        (e.g. ``module__hidden_units=300``), ``optimizer__<name>``,
        ``criterion__<name>`` and ``callbacks__<name>__<param>``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    n_features_in_ : int
        Number of features (pixels) seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    image_shape_ : tuple of int
        ``(channels, height, width)`` of the images the input rows hold.

    pixel_mean_ : float
        Mean of the training pixels, subtracted by the network's first layer.

    pixel_std_ : float
        Standard deviation of the training pixels, by which that layer divides.

    module_ : torch.nn.Module
        The fitted network, from raw feature rows to logits.

    history_ : skorch.History
        Per-epoch and per-batch records of the training run.

    n_iter_ : int
        Number of epochs run.

    rehearsal_X_ : ndarray of shape (n_rehearsal, n_features)
        Earlier training samples kept for rehearsal in :meth:`partial_fit`.

    rehearsal_y_ : ndarray of shape (n_rehearsal,)
        Their labels.

    rehearsal_sample_weight_ : ndarray of shape (n_rehearsal,)
        Their sample weights (1 for samples given without).

    n_samples_seen_ : int
        Training samples seen by ``fit`` and ``partial_fit`` since the last ``fit``.

    See Also
    --------
    make_cnn_ensemble : Several such networks, differing in seed (and chosen parameters), voting.
    sk_mnist.persistence.save : Write a fitted classifier to a model file.
    sklearn.neural_network.MLPClassifier : A fully connected network.
    skorch.NeuralNetClassifier : The general skorch classifier this builds on.

    Notes
    -----
    Input: ``X`` may be rows of pixels ``(n, n_features)``, images
    ``(n, height, width)`` or ``(n, channels, height, width)``; uint8 or any
    numeric dtype; numpy, pandas or anything array-like. Rows whose length is a
    square number are square images; other rows are placed on the smallest
    square canvas that holds them. Images of any side are resized to 28x28
    inside the network.

    Pixel scaling is learnt: ``fit`` records the mean and standard deviation
    of the training pixels and the network standardizes with them. So 0-255
    pixels need no scaling beforehand, the same pixels give the same
    predictions whatever their form or dtype, and the classifier works behind
    :class:`~sk_mnist.preprocessing.PixelScaler` or
    :class:`~sk_mnist.preprocessing.GlobalStandardizer` as well.

    Examples
    --------
    >>> from sk_mnist import MNISTCNNClassifier, load_mnist
    >>> X, y = load_mnist(return_X_y=True)
    >>> clf = MNISTCNNClassifier(max_epochs=2, random_state=0)
    >>> clf.fit(X[:2000], y[:2000])
    MNISTCNNClassifier(max_epochs=2, random_state=0)
    >>> clf.predict(X[-3:])
    array([5, 6, 8])
    >>> round(clf.score(X[-1000:], y[-1000:]), 2)  # doctest: +SKIP
    0.94
    """

    _parameter_constraints: dict = {
        "architecture": [StrOptions(set(ARCHITECTURES)), callable],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "augment": ["boolean", Interval(Real, 0, 1, closed="both")],
        "test_time_augmentation": ["boolean"],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "label_smoothing": [Interval(Real, 0, 1, closed="both")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "optimizer": [callable],
        "precision": [StrOptions({"auto", "float32", "bfloat16"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "ema_decay": [Interval(Real, 0, 1, closed="left"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "rehearsal_size": [Interval(Integral, 0, None, closed="left")],
        "callbacks": [list, None],
        "checkpoint_dir": [str, os.PathLike, None],
        "resume": ["boolean"],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    # skorch components that the recipe fixes. Class attributes, not
    # constructor parameters: scikit-learn treats every instance attribute
    # set in __init__ as a parameter.
    criterion = nn.CrossEntropyLoss
    train_split = None  # the split is made in get_split_datasets
    predict_nonlinearity = "auto"
    warm_start = False
    compile = False
    use_caching = "auto"
    torch_load_kwargs = None
    classes = None
    # The per-instance state skorch's __init__ would create, before fit.
    history_ = None
    initialized_ = False
    virtual_params_ = MappingProxyType({})

    def __init__(
        self,
        *,
        architecture="fast",
        dropout=0.1,
        batch_norm=True,
        augment=True,
        test_time_augmentation=False,
        lr=6e-3,
        weight_decay=1e-4,
        label_smoothing=0.1,
        class_weight=None,
        optimizer=torch.optim.Adam,
        precision="auto",
        batch_size=256,
        max_epochs=12,
        ema_decay=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        rehearsal_size=8000,
        callbacks=None,
        checkpoint_dir=None,
        resume=False,
        device="auto",
        verbose=0,
        random_state=None,
        **kwargs,
    ):
        # NeuralNet.__init__ is deliberately not called: it stores skorch's
        # own defaults (module, iterators, train_split, ...) on the instance,
        # where scikit-learn would count them as parameters of this class.
        self.architecture = architecture
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.augment = augment
        self.test_time_augmentation = test_time_augmentation
        self.lr = lr
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.optimizer = optimizer
        self.precision = precision
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.ema_decay = ema_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.rehearsal_size = rehearsal_size
        self.callbacks = callbacks
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.device = device
        self.verbose = verbose
        self.random_state = random_state
        self._params_to_validate = set(kwargs)
        vars(self).update(kwargs)

    # -- parameters -----------------------------------------------------------

    @property
    def device(self):
        """The torch device in use: the ``device`` parameter, "auto" resolved."""
        return resolve_device(vars(self)["device"])

    @device.setter
    def device(self, value):
        vars(self)["device"] = value

    def _get_param_names(self):
        # skorch's rule: every public attribute that is not fitted state. That
        # is the constructor's parameters plus routed ones such as module__*;
        # an unknown name is kept too, and reported by skorch at fit.
        return sorted(key for key in vars(self) if not key.startswith("_") and not key.endswith("_"))

    def get_params(self, deep=True):
        """Get parameters for this estimator.

        Parameters
        ----------
        deep : bool, default=True
            Ignored: no parameter is itself an estimator.

        Returns
        -------
        params : dict
            The constructor parameters and routed ``prefix__name`` parameters.
        """
        # Read the stored values: the ``device`` attribute resolves "auto".
        return {name: vars(self)[name] for name in self._get_param_names()}

    def set_params(self, **params):
        """Set the parameters of this estimator.

        Parameters
        ----------
        **params : dict
            Constructor parameters and routed ``prefix__name`` parameters.

        Returns
        -------
        self : MNISTCNNClassifier
            This estimator.
        """
        # A new callbacks list is an ordinary parameter, used at the next fit;
        # skorch would build the callbacks at once, before parameters are valid.
        if "callbacks" in params:
            BaseEstimator.set_params(self, callbacks=params.pop("callbacks"))
        return super().set_params(**params)

    # scikit-learn's repr (parameters that differ from their defaults), not
    # skorch's dump of the fitted modules.
    __repr__ = BaseEstimator.__repr__

    def __setstate__(self, state):
        # skorch maps loaded tensors to ``state["device"]``; give it a real device.
        requested = state["device"]
        state["device"] = resolve_device(requested)
        super().__setstate__(state)
        vars(self)["device"] = requested

    # -- model files (sk_mnist.persistence) -------------------------------------

    # What skorch's initialize() creates, and what its __init__ derives (the
    # class attributes above mirror the latter): a model file stores none of
    # them, since _set_network_state rebuilds them from the parameters.
    _rebuilt_attributes = (
        "module_",
        "criterion_",
        "optimizer_",
        "callbacks_",
        "initialized_",
        "virtual_params_",
        "prefixes_",
        "cuda_dependent_attributes_",
        "init_context_",
        "_modules",
        "_criteria",
        "_optimizers",
        "_params_to_validate",
    )

    @classmethod
    def _routed_prefixes(cls):
        """Prefixes of the parameters skorch routes (``module__*``, ``optimizer__*``, ...)."""
        # skorch registers the prefixes of its three components only when they
        # are initialized.
        return {*cls.prefixes_, "module", "criterion", "optimizer"}

    def _get_network_state(self):
        """Hand out the fitted network's tensors and its optimizer's state.

        Returns
        -------
        tensors : dict of str to torch.Tensor
            The network's ``state_dict``.
        optimizer_state : dict
            The optimizer's ``state_dict``.
        """
        return self.module_.state_dict(), self.optimizer_.state_dict()

    def _set_network_state(self, tensors, optimizer_state):
        """Take back what :meth:`_get_network_state` handed out.

        For an instance whose parameters and fitted attributes were restored
        (by :func:`sk_mnist.persistence.load`), but not skorch's components:
        they are rebuilt from the parameters, then given ``tensors`` and
        ``optimizer_state``, so that ``partial_fit`` goes on exactly as it
        would have on the saved classifier.

        Raises
        ------
        ValueError
            If the fitted attributes contradict each other, or ``tensors``
            do not have the names, shapes and dtypes of the network the
            parameters describe; checked before any memory is allocated for it.
        """
        self._check_image_shape()
        self._check_rehearsal()
        # First on the meta device, which allocates nothing: the parameters alone
        # decide the network's size, so they must agree with the tensors before
        # a real network is built. skorch lets components be set only inside
        # its init context.
        with torch.device("meta"), self._current_init_context("module"):
            self.initialize_module()
        expected = {name: (t.dtype, tuple(t.shape)) for name, t in self.module_.state_dict().items()}
        found = {name: (t.dtype, tuple(t.shape)) for name, t in tensors.items()}
        if expected != found:
            differ = sorted(
                name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name)
            )
            raise ValueError(
                "the stored weights do not fit the network its parameters describe "
                f"(tensors that differ in name, shape or dtype: {differ[:5]})."
            )
        # initialize() clears the history in place: keep the restored one aside.
        history = vars(self).pop("history_")
        # initialize() draws initial weights, about to be overwritten, from torch's
        # global generator: fork it so that loading leaves the caller's random state alone.
        with torch.random.fork_rng(devices=[]):
            self.initialize()
        self.module_.load_state_dict(tensors)
        self.history_ = history
        self.optimizer_.load_state_dict(optimizer_state)

    def _check_image_shape(self):
        """Refuse an image shape that the fitted number of pixels could not have given.

        The network's weights do not depend on the image size, so nothing else
        ties it to a model file: a shape of a million by a million pixels would
        load, and then allocate terabytes at the first prediction.
        """
        shape, n_features = self.image_shape_, self.n_features_in_
        if not (
            type(n_features) is int
            and n_features > 0
            and isinstance(shape, tuple)
            and len(shape) == 3
            and all(type(d) is int and d > 0 for d in shape)
            and (shape == canvas_shape(n_features) or np.prod(shape, dtype=object) == n_features)
        ):
            raise ValueError(
                f"image_shape_ {shape!r} is not a (channels, height, width) shape that "
                f"{n_features!r} pixels fill"
            )

    def _check_rehearsal(self):
        """Refuse a rehearsal buffer whose images, labels and weights do not match up.

        A file written before sample weights existed has no weights: its samples
        all weighed 1.
        """
        if not hasattr(self, "rehearsal_X_"):
            return
        if not hasattr(self, "rehearsal_sample_weight_") and hasattr(self, "rehearsal_y_"):
            self.rehearsal_sample_weight_ = np.ones(len(self.rehearsal_y_))
        parts = [
            getattr(self, name, None) for name in ("rehearsal_X_", "rehearsal_y_", "rehearsal_sample_weight_")
        ]
        if not (
            all(isinstance(part, np.ndarray) for part in parts)
            and parts[0].ndim >= 2
            and parts[1].ndim == parts[2].ndim == 1
            and len(parts[0]) == len(parts[1]) == len(parts[2])
            and parts[2].dtype.kind == "f"
            and np.all(np.isfinite(parts[2]) & (parts[2] >= 0))
        ):
            raise ValueError(
                "rehearsal_X_, rehearsal_y_ and rehearsal_sample_weight_ must be arrays holding "
                "one image, one label and one non-negative weight per rehearsed sample"
            )

    # -- skorch components ----------------------------------------------------

    @property
    def _default_callbacks(self):
        return recipe_callbacks(self)

    def initialize_module(self):
        """Build ``module_``: input view, augmentation, standardization, network.

        Returns
        -------
        self : MNISTCNNClassifier
            This estimator, with ``module_`` set.
        """
        check_is_fitted(self, "image_shape_")
        architecture = self.architecture
        if isinstance(architecture, str):
            architecture = ARCHITECTURES[architecture]
        network = architecture(
            n_classes=len(self.classes_),
            in_channels=self.image_shape_[0],
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            **self.get_params_for("module"),
        )
        layers = [("view", ImageView(self.image_shape_))]
        if self.augment:
            layers.append(("augment", RandomAffine(p=float(self.augment))))
        layers += [("standardize", Standardize(self.pixel_mean_, self.pixel_std_)), ("network", network)]
        # Channels-last weights, to match the channels-last images ImageView makes.
        self.module_ = nn.Sequential(OrderedDict(layers)).to(memory_format=torch.channels_last)
        return self

    def initialize_criterion(self):
        """Build ``criterion_``: cross-entropy with ``label_smoothing``, under user overrides.

        The criterion returns one loss per sample (``reduction="none"``,
        whatever ``criterion__reduction`` says): :meth:`get_loss` weighs them.

        Returns
        -------
        self : MNISTCNNClassifier
            This estimator, with ``criterion_`` set.
        """
        kwargs = {
            "label_smoothing": self.label_smoothing,
            **self.get_params_for("criterion"),
            "reduction": "none",
        }
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        return self

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Mean of the per-sample losses, each multiplied by its sample's weight.

        Parameters
        ----------
        y_pred : torch.Tensor of shape (n_batch, n_classes)
            The network's logits.
        y_true : tuple of torch.Tensor
            ``(targets, weights)``: what ``criterion_`` compares the logits
            with (the class indices) and the samples' weights, normalized by
            ``fit`` and ``partial_fit`` to a mean of 1 over their data.
        X : torch.Tensor, default=None
            Ignored; accepted for compatibility with skorch's signature.
        training : bool, default=False
            Ignored; accepted for compatibility with skorch's signature.

        Returns
        -------
        loss : torch.Tensor of shape ()
            The weighted mean loss of the batch.
        """
        targets, weights = y_true
        return torch.mean(self.criterion_(y_pred, targets) * weights)

    def initialize_optimizer(self, *args, **kwargs):
        """Build ``optimizer_`` with the recipe's defaults under user overrides.

        The optimizer gets all learnable parameters of ``module_`` and
        ``criterion_``, ``weight_decay``, ``eps=1e-7`` where it takes one, and
        the ``optimizer__<name>`` parameters over these defaults.

        Parameters
        ----------
        *args : tuple
            Ignored; accepted for compatibility with skorch's signature.
        **kwargs : dict
            Ignored; accepted for compatibility with skorch's signature.

        Returns
        -------
        self : MNISTCNNClassifier
            This estimator, with ``optimizer_`` set.
        """
        args, kwargs = self.get_params_for_optimizer("optimizer", self.get_all_learnable_params())
        defaults = {"weight_decay": self.weight_decay}
        if "eps" in signature(self.optimizer).parameters:
            defaults["eps"] = 1e-7
        self.optimizer_ = self.optimizer(*args, **{**defaults, **kwargs})
        return self

    def get_dataset(self, X, y=None):
        """Wrap validated tensors; batches are served by :meth:`get_iterator`.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            Validated training or evaluation images, as rows.
        y : tuple of torch.Tensor, default=None
            Class indices and sample weights, or None for data to predict.

        Returns
        -------
        dataset : skorch.dataset.Dataset
            The tensors, unchanged.
        """
        return Dataset(X, y)

    def get_split_datasets(self, X, y=None, **fit_params):
        """Hold out a stratified validation set when early stopping is active.

        Both tensors are moved to ``device`` first. Without early stopping
        there is no validation set; with it, ``validation_fraction`` of the
        samples of each class are held out, or, when some class has too few
        samples for that, the training data double as validation data.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            Validated training images, as rows.
        y : tuple of torch.Tensor
            ``(targets, weights)``: class indices and sample weights, both of
            shape (n_samples,); the split keeps them with their images.
        **fit_params : dict
            Ignored; accepted for compatibility with skorch's signature.

        Returns
        -------
        dataset_train : skorch.dataset.Dataset
            The training samples.
        dataset_valid : skorch.dataset.Dataset or None
            The validation samples, or None without early stopping.
        """
        X, targets, weights = (tensor.to(self.device) for tensor in (X, *y))
        dataset = self.get_dataset(X, (targets, weights))
        if "early_stopping" not in dict(self.callbacks_):
            return dataset, None
        split = stratified_split(
            targets.cpu().numpy(), self.validation_fraction, int(torch.randint(2**31 - 1, ()))
        )
        if split is None:  # too few samples to hold out every class
            return dataset, dataset
        train, valid = (torch.as_tensor(rows, device=self.device) for rows in split)
        return (
            self.get_dataset(X[train], (targets[train], weights[train])),
            self.get_dataset(X[valid], (targets[valid], weights[valid])),
        )

    def get_iterator(self, dataset, training=False):
        """Serve whole in-memory batches: shuffled for training, larger for evaluation.

        Parameters
        ----------
        dataset : skorch.dataset.Dataset
            Tensors, as made by :meth:`get_dataset`.
        training : bool, default=False
            Whether the batches are for training: then they hold
            ``batch_size`` samples, in a new random order on every pass;
            otherwise they are at least as large and in order.

        Returns
        -------
        iterator : iterable of tuple of torch.Tensor
            ``(X, y)`` mini-batches on ``device``, re-iterable.
        """
        batch_size = self.batch_size if training else self._evaluation_batch_size()
        return InMemoryBatches(dataset, batch_size, shuffle=training, device=self.device)

    def _evaluation_batch_size(self):
        return max(self.batch_size, INFERENCE_BATCH_SIZE)

    def infer(self, x, **fit_params):
        """Run the network on a batch; in training, under ``precision``'s autocast.

        In evaluation, a batch smaller than the evaluation batch size is
        padded with zero rows to that size and the logits of the padding
        dropped: oneDNN picks its kernels by batch size, so a row's logits
        would otherwise change in their last bits with the number of rows
        predicted with it, and ``predict`` on a subset of the rows would not
        give exactly those rows of ``predict`` on all of them.

        Parameters
        ----------
        x : torch.Tensor of shape (n_batch, n_features)
            A batch of images, as rows.
        **fit_params : dict
            Passed on to the ``forward`` method of ``module_``.

        Returns
        -------
        logits : torch.Tensor of shape (n_batch, n_classes)
            The network's output, in float32.
        """
        if not self.module_.training:
            return self._padded(x, partial(super().infer, **fit_params))
        if resolve_precision(self.precision, self.device) != "bfloat16":
            return super().infer(x, **fit_params)
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16):
            logits = super().infer(x, **fit_params)
        # The loss, its gradient and everything after them in float32.
        return logits.float()

    def _padded(self, x, run):
        """``run(x)`` on ``x`` padded with zero rows to the evaluation batch size (see :meth:`infer`)."""
        n_rows, size = len(x), self._evaluation_batch_size()
        if n_rows < size:
            x = torch.cat([x, x.new_zeros((size - n_rows, *x.shape[1:]))])
        return run(x)[:n_rows]

    def evaluation_step(self, batch, training=False):
        """Run the network on a batch for prediction, over its views with ``test_time_augmentation``.

        Validation during training goes through skorch's ``validation_step``
        instead, so it scores each image alone whatever
        ``test_time_augmentation`` says, and training does not depend on it.

        Parameters
        ----------
        batch : tuple of (torch.Tensor, object)
            A batch of images, as rows, and its targets (ignored).
        training : bool, default=False
            Whether to run the network in training mode (then without views).

        Returns
        -------
        logits : torch.Tensor of shape (n_batch, n_classes)
            The network's logits; with ``test_time_augmentation``, the log of
            the summed probabilities of each image and its
            :func:`~sk_mnist.modules.tta_views`, whose softmax is their mean.
        """
        if training or not self.test_time_augmentation:
            return super().evaluation_step(batch, training=training)
        self.check_is_fitted()
        Xi, _ = unpack_data(batch)
        with torch.no_grad():
            self._set_training(False)
            return self._padded(to_tensor(Xi, device=self.device), self._averaged_views)

    def _averaged_views(self, x):
        view, rest = self.module_[0], self.module_[1:]
        log_probabilities = [torch.log_softmax(rest(images), dim=1) for images in tta_views(view(x))]
        # log(sum of probabilities), without underflow: softmax turns it into their mean.
        return torch.logsumexp(torch.stack(log_probabilities), dim=0)

    def check_data(self, X, y=None):
        """Do nothing: ``fit`` and ``partial_fit`` validate their input themselves.

        Parameters
        ----------
        X : object
            Ignored.
        y : object, default=None
            Ignored.
        """

    # -- scikit-learn API -----------------------------------------------------

    def _validate_hyperparameters(self):
        validate_parameter_constraints(
            self._parameter_constraints, self.get_params(deep=False), caller_name=type(self).__name__
        )
        check_device(vars(self)["device"], type(self).__name__)

    def _validate_training_data(self, X, y, *, reset, classes=None):
        """Validate X and y; at reset, record what the network needs to know."""
        X, y, image_shape = validate_images(self, X, y, reset=reset)
        labels = y[self._is_labelled(y)]
        check_classification_targets(labels)
        if reset:
            self.classes_inferred_ = np.unique(labels if classes is None else classes)
            if len(self.classes_) < 2:
                found = f"1 class ({self.classes_[0]!r})" if len(self.classes_) else "none"
                unlabelled = len(y) - len(labels)
                if unlabelled:
                    found += f" among its labelled samples ({unlabelled} are unlabelled, -1)"
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in y; got {found}."
                )
            self.image_shape_ = image_shape
            mean, std = _pixel_statistics(X)
            # Constant pixels: standardizing only subtracts the mean.
            self.pixel_mean_, self.pixel_std_ = mean, std or 1.0
        return X, y

    def _is_labelled(self, y):
        """Which samples of ``y`` carry a class label: here every one."""
        return np.ones(len(y), dtype=bool)

    def _check_pixel_scale(self, X):
        """Warn when ``X``'s pixels are on another scale than the training pixels.

        The network standardizes with the training pixels' statistics, so
        pixels on another scale (0-1 against 0-255) reach it as near-constant
        images and every prediction comes out the same: scikit-learn's way
        for such a silent mismatch (as for feature names) is a warning.
        """
        mean, std = _pixel_statistics(X)
        spread = std / self.pixel_std_
        shift = abs(mean - self.pixel_mean_) / self.pixel_std_
        # A constant batch (std 0) says nothing about its spread.
        if (std > 0 and not 0.1 <= spread <= 10) or shift > 10:
            warnings.warn(
                f"X's pixels have mean {mean:.3g} and standard deviation {std:.3g}, but "
                f"{type(self).__name__} was fitted on pixels of mean {self.pixel_mean_:.3g} and "
                f"standard deviation {self.pixel_std_:.3g}: are they on another scale (0-1 against "
                "0-255, say)? Scale them as the training pixels were.",
                UserWarning,
                stacklevel=4,  # the caller of predict or predict_proba
            )

    def _targets(self, X, y, sample_weight):
        """What the network learns for each sample: here the index of its class.

        ``sample_weight`` is for subclasses that fit a model of their own on
        the data (the distillation teacher); the class index needs none.
        """
        return self._class_indices(y)

    def _class_indices(self, y):
        """The index in ``classes_`` of each label of ``y``; unknown labels are refused."""
        unseen = np.setdiff1d(y, self.classes_)
        if unseen.size:
            raise ValueError(
                f"y contains labels {unseen.tolist()} that are not in classes_ {self.classes_.tolist()}."
            )
        return torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.int64)

    def _weights(self, y, sample_weight):
        """Each sample's weight in the loss: its sample weight times its class's, mean 1.

        The mean of 1 keeps the loss, and so the steps the learning rate
        takes, on the scale of an unweighted fit whatever the weights' scale.
        """
        weights = sample_weight * self._class_weights(y, sample_weight)
        if not weights.any():
            raise ValueError(
                f"{type(self).__name__} needs some sample of positive weight; with class_weight "
                f"{self.class_weight!r}, every sample's weight is 0."
            )
        weights = weights / weights.max()  # first, so that the mean cannot overflow
        return torch.as_tensor(weights / weights.mean(), dtype=torch.float32)

    def _class_weights(self, y, sample_weight):
        """The weight of each sample's class (``class_weight``), one per sample."""
        if isinstance(self.class_weight, dict):
            # Looked up as given: compute_class_weight would read a label "0" as 0.
            _check_class_weight(self.class_weight, self.classes_)
            class_weight = np.array([self.class_weight.get(label, 1.0) for label in self.classes_.tolist()])
        else:
            class_weight = compute_class_weight(
                self.class_weight, classes=self.classes_, y=y, sample_weight=sample_weight
            )
        return class_weight[np.searchsorted(self.classes_, y)]

    def _remember(self, X, y, sample_weight, rng, *, reset=False):
        """Keep a uniform sample of all training samples seen, for rehearsal.

        Reservoir sampling: the ``rehearsal_size`` samples in the buffer are,
        at any time, a uniform random sample of everything ``fit`` and
        ``partial_fit`` have been given.
        """
        if reset or not hasattr(self, "rehearsal_X_"):
            self.rehearsal_X_, self.rehearsal_y_ = X[:0], y[:0]
            self.rehearsal_sample_weight_ = sample_weight[:0]
            self.n_samples_seen_ = 0
        free = self.rehearsal_size - len(self.rehearsal_X_)
        # concatenate takes a dtype that holds old and new samples alike (longer
        # string labels, float pixels after uint8 ones), even when none is added.
        buffers = [
            np.concatenate([kept, new[:free]])
            for kept, new in zip(
                (self.rehearsal_X_, self.rehearsal_y_, self.rehearsal_sample_weight_), (X, y, sample_weight)
            )
        ]
        added = len(buffers[0]) - len(self.rehearsal_X_)
        # Sample number t (0-based) replaces a random slot with probability size / (t + 1).
        t = self.n_samples_seen_ + np.arange(added, len(X))
        slots = rng.integers(0, t + 1)
        keep = slots < self.rehearsal_size
        for buffer, new in zip(buffers, (X, y, sample_weight)):
            buffer[slots[keep]] = new[added:][keep]
        self.rehearsal_X_, self.rehearsal_y_, self.rehearsal_sample_weight_ = buffers
        self.n_samples_seen_ += len(X)

    def _grow_classes(self, labels):
        """Widen the output layer for labels not seen before, keeping the old units."""
        new = np.setdiff1d(labels[self._is_labelled(labels)], self.classes_)
        if not new.size:
            return
        classes = np.union1d(self.classes_, new)
        expand_output(self.module_.network, len(classes), np.searchsorted(classes, self.classes_))
        self.classes_inferred_ = classes
        self.initialize_optimizer()

    def _seed(self):
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def fit(self, X, y, sample_weight=None):
        """Train the network from scratch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), (n_samples, height, \
width) or (n_samples, channels, height, width)
            Training images; see the Notes of the class for the forms accepted.
        y : array-like of shape (n_samples,)
            Class labels: integers, strings, or any sortable labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss (and in the
            validation loss and accuracy of early stopping), multiplied by
            its class's weight (``class_weight``). None weighs every sample 1.

        Returns
        -------
        self : MNISTCNNClassifier
            The fitted classifier.
        """
        self._validate_hyperparameters()
        X, y = self._validate_training_data(X, y, reset=True)
        sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        weights = self._weights(y, sample_weight)
        seed, state = self._seed(), None
        self._remember(X, y, sample_weight, np.random.default_rng(seed), reset=True)
        X, y = _to_tensor(X), self._targets(X, y, sample_weight)
        if self.checkpoint_dir is not None:
            accepted = fingerprints(self, X, y, weights)
            if self.resume:
                state = read_checkpoint(self.checkpoint_dir, accepted)
                # The original run's seed gives the original validation split.
                seed = seed if state is None else state["seed"]
        with seeded(seed, self.device):
            self.initialize()
            epochs = self.max_epochs
            if self.checkpoint_dir is not None:
                epochs = dict(self.callbacks_)["checkpoint"].start(self, accepted[0], seed, state)
            self._train(X, y, weights, epochs)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train the network for one more epoch on the given samples.

        The first call (on an unfitted classifier) builds the network; later
        calls continue from the current weights, at learning rate ``lr``,
        without validation split, early stopping or schedule. Each epoch also
        rehearses the buffer of earlier samples (``rehearsal_size``).

        Beyond scikit-learn's convention, labels not seen before are welcome:
        the output layer grows by one unit per new class, the units of the
        known classes keep their weights, and ``classes_`` is extended.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training images, in any form :meth:`fit` accepts.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like of shape (n_classes,), default=None
            Classes to know from now on, beyond those in ``y``: on the first
            call, all the classes expected (scikit-learn's convention); later,
            any new ones to add.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the loss, multiplied by its
            class's weight (``class_weight``, which cannot be "balanced"
            here); the rehearsed samples keep the weights they came with.
            None weighs every sample 1.

        Returns
        -------
        self : MNISTCNNClassifier
            The updated classifier.
        """
        first_call = not self.initialized_
        if first_call:
            self._validate_hyperparameters()
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            # As scikit-learn's SGDClassifier: one batch's class frequencies are not the data's.
            raise ValueError(
                "class_weight='balanced' is not available in partial_fit: the class frequencies of one "
                "batch are not those of the data. Compute weights from a large enough sample of the "
                "labels with sklearn.utils.class_weight.compute_class_weight and pass them as a dict."
            )
        X, y = self._validate_training_data(X, y, reset=first_call, classes=classes)
        sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        if not first_call:
            check_label_kind(
                y if classes is None else np.concatenate([y, classes]), self.classes_, type(self).__name__
            )
        seed = self._seed() + len(self.history_ or ())
        rng = np.random.default_rng(seed)
        with seeded(seed, self.device):
            if first_call:
                self.initialize()
                self._remember(X[:0], y[:0], sample_weight[:0], rng, reset=True)
            else:
                self._grow_classes(y if classes is None else np.concatenate([y, classes]))
            # Earlier samples rehearsed alongside the new ones limit forgetting;
            # repeated so that each of their classes is seen about as often as
            # each class of the new data, or the new classes would swamp the old.
            repeats = _rehearsal_repeats(y, self.rehearsal_y_)
            X_train, y_train, weight_train = (
                np.concatenate([new, *[kept] * repeats])
                for new, kept in zip(
                    (X, y, sample_weight),
                    (self.rehearsal_X_, self.rehearsal_y_, self.rehearsal_sample_weight_),
                )
            )
            targets = self._targets(X_train, y_train, weight_train)  # first: it checks the labels
            weights = self._weights(y_train, weight_train)
            # One plain epoch: no validation, early stopping, schedule or checkpoint.
            self.callbacks_ = [(name, cb) for name, cb in self.callbacks_ if name not in FIT_ONLY_CALLBACKS]
            for group in self.optimizer_.param_groups:
                group["lr"] = self.lr
            self._train(_to_tensor(X_train), targets, weights, epochs=1)
        self._remember(X, y, sample_weight, rng)
        return self

    def _train(self, X, y, weights, epochs):
        """Run skorch's loop for ``epochs`` epochs, telling Ctrl-C from early stopping.

        skorch stops early by raising KeyboardInterrupt from a callback, and its
        own ``partial_fit`` swallows every KeyboardInterrupt silently; here a
        user's interruption ends training just as cleanly, but says so.
        """
        self.notify("on_train_begin", X=X, y=y)
        try:
            self.fit_loop(X, (y, weights), epochs=epochs)
        except KeyboardInterrupt:
            stopper = dict(self.callbacks_).get("early_stopping")
            interrupted = stopper is None or stopper.misses_ != stopper.patience
        else:
            interrupted = False
        self.notify("on_train_end", X=X, y=y)
        self.n_iter_ = len(self.history_)
        if interrupted:
            kept = "the weights of the last epoch"
            if "weight_average" in dict(self.callbacks_):  # fit, not partial_fit
                kept = "the moving average of its weights so far"
            elif stopper is not None and stopper.best_epoch_:
                kept = f"the weights of the best epoch so far ({stopper.best_epoch_})"
            warnings.warn(
                f"Training interrupted after {self.n_iter_} epoch{'s' * (self.n_iter_ != 1)}; "
                f"the model keeps {kept}.",
                UserWarning,
                stacklevel=3,
            )

    def predict_proba(self, X):
        """Probability of each class for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Images, in any form :meth:`fit` accepts, matching the fitted shape.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Class probabilities, columns in the order of ``classes_``.
        """
        return self._probabilities(X)

    def predict(self, X):
        """Predict the class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Images, in any form :meth:`fit` accepts, matching the fitted shape.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels, taken from ``classes_``.
        """
        proba = self._probabilities(X)  # first: it checks that the classifier is fitted
        return self.classes_[proba.argmax(axis=1)]

    def _probabilities(self, X):
        # Called at the same depth by predict and predict_proba, so that the
        # pixel-scale warning points at the user's call of either.
        check_is_fitted(self)
        X, _ = validate_images(self, X, reset=False)
        self._check_pixel_scale(X)
        logits = self.forward(_to_tensor(X))
        # Softmax in double precision: rows then sum to one to 1e-15.
        return torch.softmax(logits.double(), dim=1).numpy()


def _check_class_weight(class_weight, classes):
    """Refuse a class_weight dict that names unknown classes or weighs one by other than a number >= 0."""
    known = set(classes.tolist())
    unknown = [label for label in class_weight if label not in known]
    if unknown:
        raise ValueError(
            f"class_weight names labels {unknown} that are not among the classes {classes.tolist()}."
        )
    for label, weight in class_weight.items():
        if isinstance(weight, bool) or not isinstance(weight, Real) or not 0 <= weight < np.inf:
            raise ValueError(
                f"class_weight must weigh each class by a finite number >= 0; got {weight!r} for {label!r}."
            )


def _rehearsal_repeats(y_new, y_buffer):
    """How often to repeat the buffer so that its classes match the new data's."""
    if not len(y_buffer):
        return 0
    # Distinct labels by hashing, not sorting: unlabelled -1 may sit among strings.
    per_new_class = len(y_new) / len(set(y_new.tolist()))
    per_buffer_class = len(y_buffer) / len(set(y_buffer.tolist()))
    return max(1, round(per_new_class / per_buffer_class))


def _to_tensor(X):
    """Share memory with ``X`` where torch can; float64 becomes float32."""
    if X.dtype == np.float64:
        X = X.astype(np.float32)
    # torch needs a writable, C-ordered buffer; read-only inputs are copied.
    return torch.from_numpy(np.require(X, requirements=["C_CONTIGUOUS", "WRITEABLE"]))
