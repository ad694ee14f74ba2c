"""Knowledge distillation: a small student CNN taught by a large teacher."""

from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._classifier import MNISTCNNClassifier, _to_tensor
from ._images import validate_images
from ._labels import check_label_kind
from .modules import ARCHITECTURES, DistillationLoss, output_layer

__all__ = ["TEACHER_PARAMS", "DistilledCNNClassifier"]

#: Parameters of the teacher ``DistilledCNNClassifier(teacher=None)`` fits: the
#: strongest recipe, to the end of its schedule, on unsmoothed labels.
TEACHER_PARAMS = {"architecture": "deep", "early_stopping": False, "label_smoothing": 0.0}


class DistilledCNNClassifier(MNISTCNNClassifier):
    """A small CNN trained on a teacher's softened predictions (Hinton et al. 2015).

    ``fit`` trains the ``student`` network on a mix of the true labels and the
    teacher's class probabilities softened at ``temperature``: the teacher's
    near-misses ("this 7 looks a bit like a 1") carry more information per
    image than the labels alone, which lets a network with a fraction of the
    parameters get close to the teacher. Everything else (input forms,
    recipe, parameters, conventions) is that of :class:`MNISTCNNClassifier`.

    The teacher is asked batch by batch, about the very images the student
    is trained on: with ``augment=True`` those are randomly rotated, scaled
    and shifted, and the teacher's view of the transformed digit is what the
    student should match (Beyer et al. 2022). Each training epoch therefore
    also runs the teacher over the training set once.

    Unlabelled images are welcome, with scikit-learn's convention for
    semi-supervised learning (:class:`~sklearn.semi_supervised.SelfTrainingClassifier`):
    the label -1 marks an image without a label (among string labels, give
    ``y`` dtype object and the number -1; a string array holding "-1" is
    refused). The teacher, if it has to be fitted, learns from the labelled
    images; the student learns from the teacher's soft labels on every image
    and from the true labels where they exist: an unlabelled image's loss is
    the soft term alone, weighted by ``alpha`` (with ``alpha=0`` it teaches
    nothing). ``class_weight`` weighs the labelled images by their class;
    unlabelled images weigh 1 (times their ``sample_weight``).

    The student's classes are a fitted teacher's classes, whether or not
    the training data show them all: as in Hinton et al.'s experiment, a
    transfer set without a single image of some digit still teaches it
    through the teacher's soft labels, and :meth:`fit_output_bias` then
    corrects the student's too-low output for it from a handful of
    labelled images. With a teacher that has to be fitted, the classes are
    those of the labelled images, and ``y`` needs labelled images of at
    least two classes.

    Parameters
    ----------
    teacher : classifier or None, default=None
        A classifier with ``predict_proba`` whose classes include every label
        of ``y``. If it is fitted, it is used as it is, and its classes are
        the student's; if it is unfitted, a clone of it is fitted on the
        labelled training images first (with the ``sample_weight`` of the
        fit, where some weight differs from 1); None fits the
        strongest recipe, ``MNISTCNNClassifier(**TEACHER_PARAMS)``, that is
        ``architecture="deep"`` and ``early_stopping=False``, with this
        estimator's ``random_state`` and without label smoothing: a teacher
        trained on smoothed labels gives flatter, less informative soft
        labels (Müller et al. 2019).

    student : {"small", "lenet"} or nn.Module class, default="small"
        The student network (see ``architecture`` of :class:`MNISTCNNClassifier`).
        "small" has 85% fewer parameters than "lenet".

    temperature : float, default=4.0
        Softening temperature of the teacher's probabilities and the student's
        logits in the soft term of the loss.

    alpha : float, default=0.7
        Weight of the soft (teacher) term; ``1 - alpha`` weighs the labels
        (of the labelled images: an unlabelled image has no labels' term).

    label_smoothing : float, default=0.0
        Label smoothing of the labels' term only. Off by default, unlike for
        :class:`MNISTCNNClassifier`: the teacher's soft labels already spread
        probability over the classes, and in a way that carries information.

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the student's loss, both terms, as in
        :class:`MNISTCNNClassifier`; they multiply ``sample_weight``.

    dropout : float, default=0.1
        Dropout probability before the student network's output layer.

    batch_norm : bool, default=True
        Whether to put batch normalization after each convolution of the
        student network.

    augment : bool or float in [0, 1], default=True
        Whether to randomly rotate, scale and shift each training image in
        every epoch, as in :class:`MNISTCNNClassifier` (a float is the
        probability that an image is transformed). The teacher is asked
        about the images the student sees.

    test_time_augmentation : bool, default=False
        Whether the student's predictions average the class probabilities of
        each image and of four fixed rotations and scalings of it, as in
        :class:`MNISTCNNClassifier`.

    lr : float, default=6e-3
        Peak learning rate of the student's one-cycle schedule, as in
        :class:`MNISTCNNClassifier`. :meth:`partial_fit` trains at ``lr``
        throughout.

    weight_decay : float, default=1e-4
        L2 penalty passed to the student's optimizer.

    optimizer : torch.optim.Optimizer class, default=torch.optim.Adam
        The student's optimizer, as in :class:`MNISTCNNClassifier`; further
        arguments go through ``optimizer__<name>`` parameters.

    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the student's training passes, as in
        :class:`MNISTCNNClassifier`.

    batch_size : int, default=256
        Samples per training mini-batch; the teacher is asked about each
        batch as it is trained on.

    max_epochs : int, default=12
        Passes over the training data: the length of the student's
        learning-rate schedule, and the most epochs run.

    ema_decay : float, default=None
        If set, ``fit`` keeps an exponential moving average of the student's
        weights, which the student takes at the end, as in
        :class:`MNISTCNNClassifier`.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data
        (stratified), stop when the student's validation accuracy has not
        improved for ``n_iter_no_change`` epochs, and restore the weights of
        its best epoch, as in :class:`MNISTCNNClassifier`. The validation loss
        is the distillation loss.

    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping`` is on.

    n_iter_no_change : int, default=5
        Epochs without improvement of validation accuracy before stopping.

    rehearsal_size : int, default=8000
        Number of earlier training samples kept and mixed into every
        :meth:`partial_fit` epoch, as in :class:`MNISTCNNClassifier`. 0 keeps
        none.

    callbacks : list of skorch callbacks or (name, callback) tuples, default=None
        Callbacks to run in addition to those of the recipe, during the
        student's training.

    checkpoint_dir : str or path-like, default=None
        If given, the student's whole training state is written atomically
        to ``checkpoint_dir/checkpoint.pt`` at the end of every epoch, as in
        :class:`MNISTCNNClassifier`.

    resume : bool, default=False
        With ``checkpoint_dir``: if a checkpoint is there, the student's
        training continues from its last complete epoch, as in
        :class:`MNISTCNNClassifier`.

    device : str or torch.device, default="auto"
        Where the student trains and predicts: ``"auto"`` picks CUDA when it
        is available and the CPU otherwise. The default teacher
        (``teacher=None``) is fitted on the same device.

    verbose : int, default=0
        0 is silent; 1 prints skorch's table of the student's epochs; 2 adds
        a progress bar over batches.

    random_state : int, RandomState instance or None, default=None
        Seeds everything random in the student's fit, as in
        :class:`MNISTCNNClassifier`, and is the ``random_state`` of the
        default teacher (``teacher=None``).

    **kwargs : dict
        Routed parameters for the student, in skorch's style:
        ``module__<name>`` for the student network, ``optimizer__<name>`` and
        ``callbacks__<name>__<param>``. The loss is always
        :class:`~sk_mnist.modules.DistillationLoss`, built from
        ``temperature``, ``alpha`` and ``label_smoothing``.

    Attributes
    ----------
    teacher_ : classifier
        The fitted teacher.

    classes_ : ndarray of shape (n_classes,)
        The class labels: a fitted teacher's classes, else those of the
        labelled images of ``y``.

    module_ : torch.nn.Module
        The fitted student network, from raw feature rows to logits.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.

    history_ : skorch.History
        The student's training history.

    See Also
    --------
    MNISTCNNClassifier : The teacher's (and the student's) classifier.
    sklearn.semi_supervised.SelfTrainingClassifier : Learns from its own confident
        predictions on unlabelled images instead of a teacher's soft labels.
    sk_mnist.modules.SmallCNN : The default student network.
    sk_mnist.modules.DistillationLoss : The loss minimized.

    References
    ----------
    G. Hinton, O. Vinyals and J. Dean, "Distilling the knowledge in a neural
    network", NIPS Deep Learning Workshop, 2015.

    L. Beyer, X. Zhai, A. Royer, L. Markeeva, R. Anil and A. Kolesnikov,
    "Knowledge distillation: A good teacher is patient and consistent",
    CVPR 2022.

    R. Müller, S. Kornblith and G. Hinton, "When does label smoothing help?",
    NeurIPS 2019.

    Examples
    --------
    >>> from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, load_mnist
    >>> X, y = load_mnist(return_X_y=True)
    >>> teacher = MNISTCNNClassifier(architecture="lenet", max_epochs=2, random_state=0)
    >>> teacher = teacher.fit(X[:2000], y[:2000])
    >>> student = DistilledCNNClassifier(teacher, max_epochs=5, random_state=0)
    >>> student.fit(X[:2000], y[:2000]).score(X[-1000:], y[-1000:]) > 0.85
    True
    >>> def n_parameters(clf):
    ...     return sum(p.numel() for p in clf.module_.parameters())
    >>> round(1 - n_parameters(student) / n_parameters(teacher), 2)
    0.85

    Images without a label carry the label -1; here all but the first 200:

    >>> import numpy as np
    >>> y_partial = np.where(np.arange(2000) < 200, y[:2000], -1)
    >>> student = DistilledCNNClassifier(teacher, max_epochs=1, random_state=0)
    >>> student.fit(X[:2000], y_partial).classes_.tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in MNISTCNNClassifier._parameter_constraints.items() if k != "architecture"},
        "teacher": [HasMethods(["predict_proba"]), None],
        "student": [StrOptions(set(ARCHITECTURES)), callable],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self,
        teacher=None,
        student="small",
        temperature=4.0,
        alpha=0.7,
        *,
        label_smoothing=0.0,
        class_weight=None,
        dropout=0.1,
        batch_norm=True,
        augment=True,
        test_time_augmentation=False,
        lr=6e-3,
        weight_decay=1e-4,
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
        super().__init__(
            architecture=student,
            dropout=dropout,
            batch_norm=batch_norm,
            augment=augment,
            test_time_augmentation=test_time_augmentation,
            lr=lr,
            weight_decay=weight_decay,
            label_smoothing=label_smoothing,
            class_weight=class_weight,
            optimizer=optimizer,
            precision=precision,
            batch_size=batch_size,
            max_epochs=max_epochs,
            ema_decay=ema_decay,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            rehearsal_size=rehearsal_size,
            callbacks=callbacks,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            device=device,
            verbose=verbose,
            random_state=random_state,
            **kwargs,
        )
        self.teacher = teacher
        self.temperature = temperature
        self.alpha = alpha

    # The parent's network choice is the student here: one value, two names.
    @property
    def architecture(self):
        return self.student

    @architecture.setter
    def architecture(self, value):
        self.student = value

    def initialize_criterion(self):
        """Build the distillation loss from ``temperature``, ``alpha`` and ``label_smoothing``.

        Returns
        -------
        self : DistilledCNNClassifier
            This estimator, with ``criterion_`` set to a
            :class:`~sk_mnist.modules.DistillationLoss`.
        """
        # One loss per sample: get_loss weighs them.
        self.criterion_ = DistillationLoss(
            self.temperature, self.alpha, self.label_smoothing, reduction="none"
        )
        return self

    def _is_labelled(self, y):
        """Which samples carry a label: all but those labelled -1 (scikit-learn's convention)."""
        if y.dtype.kind in "US" and np.any(y == "-1"):
            # As in sklearn.semi_supervised: a string array cannot hold the number -1.
            raise ValueError(
                "y has dtype string and contains the label '-1'. To mark unlabelled samples among "
                "string labels, use dtype object and the number -1 as their label."
            )
        return ~_equals_minus_one(y)

    def _validate_training_data(self, X, y, *, reset, classes=None):
        """As the parent's; a fitted teacher's classes are the student's classes."""
        teacher = vars(self).get("teacher_") if not reset else self._given_fitted_teacher()
        if reset and classes is None and teacher is not None:
            classes = teacher.classes_
        X, y = super()._validate_training_data(X, y, reset=reset, classes=classes)
        if teacher is not None:
            _check_teacher_knows(y[self._is_labelled(y)], teacher)
        return X, y

    def _given_fitted_teacher(self):
        """The ``teacher`` parameter if it is fitted, else None."""
        if self.teacher is None:
            return None
        try:
            check_is_fitted(self.teacher)
        except NotFittedError:
            return None
        return self.teacher

    def _targets(self, X, y, sample_weight):
        """Class indices, -1 where unlabelled; the teacher's part is made batch by batch."""
        labelled = self._is_labelled(y)
        if not hasattr(self, "teacher_"):
            self.teacher_ = self._fitted_teacher(X[labelled], y[labelled], sample_weight[labelled])
        _check_teacher_knows(self.classes_, self.teacher_)
        targets = torch.full((len(y),), -1, dtype=torch.int64)
        targets[labelled] = self._class_indices(y[labelled])
        return targets

    def _class_weights(self, y, sample_weight):
        """The weight of each labelled sample's class; 1 for unlabelled samples."""
        labelled = self._is_labelled(y)
        class_weights = np.ones(len(y))
        class_weights[labelled] = super()._class_weights(y[labelled], sample_weight[labelled])
        return class_weights

    def train_step_single(self, batch, **fit_params):
        """Compute the distillation loss of a training batch and its gradients.

        The teacher's softened probabilities for the batch's images, as
        augmented for the student, join the labels in the target.

        Parameters
        ----------
        batch : tuple of torch.Tensor
            ``(X, y)``: a mini-batch of images, as rows, and their class
            indices.
        **fit_params : dict
            Ignored; accepted for compatibility with skorch's signature.

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": logits}``: the distillation loss, whose
            gradients have been computed, and the student's logits.
        """
        self._set_training(True)
        step = self._distillation_step(batch)
        step["loss"].backward()
        return step

    def validation_step(self, batch, **fit_params):
        """Compute the distillation loss and the student's logits on a validation batch.

        Parameters
        ----------
        batch : tuple of torch.Tensor
            ``(X, y)``: a mini-batch of images, as rows, and their class
            indices.
        **fit_params : dict
            Ignored; accepted for compatibility with skorch's signature.

        Returns
        -------
        step : dict
            ``{"loss": loss, "y_pred": logits}``: the distillation loss and
            the student's logits, computed without gradients.
        """
        self._set_training(False)
        with torch.no_grad():
            return self._distillation_step(batch)

    def _distillation_step(self, batch):
        X, (labels, weights) = batch
        # The teacher is shown exactly the images the student sees, with the
        # same random rotation, scaling and shift ("consistent teaching",
        # Beyer et al. 2022): soft labels of the unaugmented images, computed
        # once, contradict the augmented images and cost the student accuracy.
        images = self.module_[:-2](X)  # input view, then augmentation in training
        logits = self.module_[-2:](images)  # standardization and the student network
        soft = self._soft_labels(images).to(logits)
        target = torch.cat([labels[:, None].to(logits), soft], dim=1)
        loss = self.get_loss(logits, (target, weights), X=X, training=self.module_.training)
        return {"loss": loss, "y_pred": logits}

    def _soft_labels(self, images):
        """The teacher's probabilities for ``images``, softened at ``temperature``."""
        # Back to the input form the teacher was fitted on: the fitted image
        # shape (a canvas, for rows that are not square), then feature rows.
        _, height, width = self.image_shape_
        if images.shape[-2:] != (height, width):
            images = F.interpolate(
                images, size=(height, width), mode="bilinear", align_corners=False, antialias=True
            )
        rows = images.reshape(len(images), -1)[:, : self.n_features_in_].cpu().numpy()
        if hasattr(self, "feature_names_in_"):
            import pandas as pd  # the student was fitted on a DataFrame: pandas is there

            rows = pd.DataFrame(rows, columns=self.feature_names_in_)
        proba = self.teacher_.predict_proba(rows)
        proba = proba[:, np.searchsorted(self.teacher_.classes_, self.classes_)]
        # Softening p at temperature T: softmax(log p / T), from the exact
        # probabilities: a floor under them (say 1e-12) would lift every
        # confident answer's near-misses to the same level and blur exactly
        # the information the student is to learn. A probability of 0 stays 0.
        log_proba = torch.log(torch.as_tensor(proba, dtype=torch.float64))
        return torch.softmax(log_proba / self.temperature, dim=1)

    def _fitted_teacher(self, X, y, sample_weight):
        """The fitted ``teacher``, or a teacher fitted on the labelled samples given."""
        teacher = self._given_fitted_teacher()
        if teacher is not None:
            return teacher
        if self.teacher is None:
            teacher = MNISTCNNClassifier(
                **TEACHER_PARAMS, random_state=self.random_state, device=vars(self)["device"]
            )
        else:
            teacher = clone(self.teacher)
        # Weights only where they weigh: a teacher that takes none still fits unweighted data.
        weighted = {"sample_weight": sample_weight} if np.any(sample_weight != 1) else {}
        return teacher.fit(X, y, **weighted)

    def fit(self, X, y, sample_weight=None):
        """Fit the teacher if needed, then train the student on its soft labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training images, in any form :class:`MNISTCNNClassifier` accepts.
        y : array-like of shape (n_samples,)
            Class labels; -1 marks an unlabelled image.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample in the student's loss, as in
            :meth:`MNISTCNNClassifier.fit`; an unfitted teacher is fitted with
            them too.

        Returns
        -------
        self : DistilledCNNClassifier
            The fitted classifier.
        """
        if hasattr(self, "teacher_"):  # a refit asks the teacher afresh
            del self.teacher_
        return super().fit(X, y, sample_weight=sample_weight)

    def fit_output_bias(self, X, y):
        """Refit the output biases on a few labelled images, every weight kept.

        The biases of the student's output layer move by the offsets that
        maximize the likelihood of ``y`` given the student's logits on ``X``
        (one offset per class, found by L-BFGS). This is the correction of
        Hinton et al. (2015) for a class the transfer set lacked: the
        student learns that class from the teacher's soft labels alone, and
        its output for it comes out too low; a handful of images of each
        class, that class included, sets it right.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Labelled images, in any form :meth:`fit` accepts, matching the
            fitted shape; a few of each class are enough.
        y : array-like of shape (n_samples,)
            Their labels, all in ``classes_``.

        Returns
        -------
        self : DistilledCNNClassifier
            The classifier, with its output biases changed.
        """
        check_is_fitted(self)
        X, y, _ = validate_images(self, X, y, reset=False)
        check_classification_targets(y)
        check_label_kind(y, self.classes_, type(self).__name__)
        targets = self._class_indices(y)
        # The network's own logits, which the biases shift: without test-time views.
        self.module_.eval()
        with torch.no_grad():
            batches = self.get_iterator(self.get_dataset(_to_tensor(X)))
            logits = torch.cat([self.infer(Xi) for Xi, _ in batches]).double().cpu()
        offsets = torch.zeros(len(self.classes_), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([offsets], max_iter=200, line_search_fn="strong_wolfe")

        def negative_log_likelihood():
            optimizer.zero_grad()
            loss = F.cross_entropy(logits + offsets, targets)
            loss.backward()
            return loss

        optimizer.step(negative_log_likelihood)
        layer = output_layer(self.module_.network)
        with torch.no_grad():
            # Centred: softmax ignores a common shift, the biases need not take it.
            layer.bias += (offsets - offsets.mean()).to(layer.bias)
        return self


def _check_teacher_knows(labels, teacher):
    """Refuse labels that the teacher has no probability for."""
    check_label_kind(labels, teacher.classes_, "the teacher")
    missing = np.setdiff1d(labels, teacher.classes_)
    if missing.size:
        raise ValueError(f"The teacher does not know the classes {missing.tolist()} of y.")


def _equals_minus_one(y):
    """Elementwise ``y == -1``, for labels of any dtype (objects may mix strings and -1)."""
    if y.dtype.kind == "O":
        return np.array([isinstance(label, Real) and label == -1 for label in y], dtype=bool)
    return y == -1 if y.dtype.kind in "biuf" else np.zeros(len(y), dtype=bool)
