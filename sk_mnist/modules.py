"""PyTorch modules: the digit networks and the layers that feed them.

Everything here is plain ``torch.nn``; nothing knows about skorch or
scikit-learn. The estimator composes a network as::

    ImageView -> RandomAffine (training only) -> Standardize -> architecture

so that a fitted ``module_`` maps raw feature rows to logits by itself, which
is also what gets exported. With test-time augmentation, the estimator runs
the layers after ``ImageView`` on each of :func:`tta_views`.
"""

import math
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "IMAGE_SIZE",
    "DeepCNN",
    "Deskew",
    "DistillationLoss",
    "FastCNN",
    "ImageView",
    "LeNet",
    "RandomAffine",
    "SmallCNN",
    "Standardize",
    "TTA_VIEWS",
    "expand_output",
    "output_layer",
    "tta_views",
]

#: Side of the square images every architecture here takes.
IMAGE_SIZE = 28


def _conv_block(c_in, c_out, size, batch_norm, padding=0):
    """Convolution -> [batch norm] -> ReLU, as a list of layers."""
    norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
    # A convolution followed by batch norm needs no bias of its own.
    conv = nn.Conv2d(c_in, c_out, size, padding=padding, bias=not batch_norm)
    return [conv, norm, nn.ReLU(inplace=True)]


class _Features(nn.Sequential):
    """Convolutional layers that, in evaluation, fold each batch norm into its convolution.

    With its statistics fixed, a batch norm is a per-channel affine map that
    the convolution before it can absorb: one pass over the activations
    instead of two, which makes inference faster on a CPU (figures in
    docs/benchmarks.md) for the same logits up to float rounding. The layers and
    their parameters stay as they are (state dicts, training and export see
    the plain layers); the folded weights are computed at each call, a few
    thousand multiplications, so they always follow the current parameters.
    Graph compilers and exporters get the plain layers: they fold batch norms
    themselves (ONNX Runtime does), and a quantizer needs the convolution
    weights as stored constants, not as products computed in the graph.
    """

    def forward(self, x):
        if self.training or torch.compiler.is_compiling():
            return super().forward(x)
        layers = list(self)
        folded = None
        for layer, following in zip(layers, [*layers[1:], None]):
            if layer is folded:
                continue
            if (
                isinstance(layer, nn.Conv2d)
                and isinstance(following, nn.BatchNorm2d)
                and following.running_var is not None
            ):
                x, folded = _conv_with_folded_norm(layer, following, x), following
            else:
                x = layer(x)
        return x


def _conv_with_folded_norm(conv, norm, x):
    """``norm(conv(x))`` for a batch norm in evaluation, as a single convolution."""
    # Not torch.nn.utils.fusion.fuse_conv_bn_weights: it wraps the folded
    # weights in new leaf Parameters, which would cut gradients off from the
    # convolution and the batch norm.
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    bias = -norm.running_mean * scale
    if norm.bias is not None:
        bias = bias + norm.bias
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    weight = conv.weight * scale.reshape(-1, 1, 1, 1)
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class _ConvNet(nn.Module):
    """Convolutional ``features``, then the ``classifier`` head every network here shares.

    The head is flatten -> linear (``hidden_units``) -> ReLU -> dropout ->
    linear (``n_classes``); :func:`expand_output` grows its last layer.
    """

    def __init__(self, features, n_features, hidden_units, dropout, n_classes):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_features, hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, n_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class LeNet(_ConvNet):
    """The LeNet-style CNN of the classic MNIST results (LeCun et al. 1998).

    conv 5x5 (20) -> [BN] -> ReLU -> max-pool 2 -> conv 5x5 (50) -> [BN] ->
    ReLU -> max-pool 2 -> flatten (800) -> linear (500) -> ReLU -> dropout ->
    linear (n_classes). It returns logits: train it with cross-entropy.

    Parameters
    ----------
    n_classes : int, default=10
        Number of outputs.
    in_channels : int, default=1
        Channels of the 28x28 input images.
    dropout : float, default=0.5
        Dropout probability before the output layer.
    batch_norm : bool, default=False
        Whether to put batch normalization after each convolution.
    hidden_units : int, default=500
        Width of the fully connected hidden layer.
    widths : tuple of int, default=(20, 50)
        Channels of the two convolutions.

    See Also
    --------
    SmallCNN : A LeNet of half the width.
    FastCNN : The fastest network here, the estimator's default.
    sk_mnist.MNISTCNNClassifier : Trains it with ``architecture="lenet"``.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import LeNet
    >>> LeNet()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self, n_classes=10, in_channels=1, dropout=0.5, batch_norm=False, hidden_units=500, widths=(20, 50)
    ):
        first, second = widths
        features = _Features(
            *_conv_block(in_channels, first, 5, batch_norm),
            nn.MaxPool2d(2),
            *_conv_block(first, second, 5, batch_norm),
            nn.MaxPool2d(2),
        )
        super().__init__(features, second * 4 * 4, hidden_units, dropout, n_classes)


class SmallCNN(LeNet):
    """A LeNet of half the width: the student network for distillation.

    conv 5x5 (16) -> [BN] -> ReLU -> max-pool 2 -> conv 5x5 (32) -> [BN] ->
    ReLU -> max-pool 2 -> flatten (512) -> linear (100) -> ReLU -> dropout ->
    linear (n_classes): about 66,000 parameters, 85% fewer than :class:`LeNet`.

    Parameters
    ----------
    n_classes : int, default=10
        Number of outputs.
    in_channels : int, default=1
        Channels of the 28x28 input images.
    dropout : float, default=0.5
        Dropout probability before the output layer.
    batch_norm : bool, default=False
        Whether to put batch normalization after each convolution.
    hidden_units : int, default=100
        Width of the fully connected hidden layer.

    See Also
    --------
    LeNet : The same network at full width.
    sk_mnist.DistilledCNNClassifier : Trains it as the student of a teacher.

    Examples
    --------
    >>> from sk_mnist.modules import LeNet, SmallCNN
    >>> def n_parameters(net):
    ...     return sum(p.numel() for p in net.parameters())
    >>> n_parameters(SmallCNN()), n_parameters(LeNet())
    (65558, 431080)
    """

    def __init__(self, n_classes=10, in_channels=1, dropout=0.5, batch_norm=False, hidden_units=100):
        super().__init__(n_classes, in_channels, dropout, batch_norm, hidden_units, widths=(16, 32))


class DeepCNN(_ConvNet):
    """A deeper CNN for the last tenths of a percent on MNIST, at LeNet's cost.

    With the default ``kernel_sizes``: conv 5x5 (32) -> [BN] -> ReLU ->
    max-pool 2 -> conv 3x3 (64, padded) -> [BN] -> ReLU -> max-pool 2 -> conv
    3x3 (128, padded) -> [BN] -> ReLU -> max-pool 2 -> flatten (1152) ->
    linear (256) -> ReLU -> dropout -> linear (n_classes). Three
    convolutional stages, each halving the image (24, 12, 6, then 3 pixels a
    side) while the channels double, see more of each digit than LeNet's two;
    about 391,000 parameters. The channels grow only
    where the images have shrunk, which keeps the convolutions cheap on a
    CPU.

    Parameters
    ----------
    n_classes : int, default=10
        Number of outputs.
    in_channels : int, default=1
        Channels of the 28x28 input images.
    dropout : float, default=0.5
        Dropout probability before the output layer.
    batch_norm : bool, default=False
        Whether to put batch normalization after each convolution.
    hidden_units : int, default=256
        Width of the fully connected hidden layer.
    kernel_sizes : tuple of 3 odd int, default=(5, 3, 3)
        Side of each convolution's kernel. The first convolution is not
        padded, so its kernel sets the side of the images the later stages
        see (``(29 - size) // 2`` after the first pooling: 12 for a 5x5
        kernel); the later convolutions are padded to keep the side.
        Members of an ensemble that differ in kernel sizes see each digit
        through different receptive fields, a source of diversity beyond the
        seed (An et al. 2020).

    See Also
    --------
    FastCNN : The same shape at half the width, pooling before batch norm.
    LeNet : Two convolutional stages instead of three.
    sk_mnist.MNISTCNNClassifier : Trains it with ``architecture="deep"``.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import DeepCNN
    >>> DeepCNN()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        n_classes=10,
        in_channels=1,
        dropout=0.5,
        batch_norm=False,
        hidden_units=256,
        kernel_sizes=(5, 3, 3),
    ):
        # The last stage needs a pixel to pool: (29 - first) // 8 >= 1.
        if not (
            isinstance(kernel_sizes, tuple | list)
            and len(kernel_sizes) == 3
            and all(
                isinstance(k, Integral) and not isinstance(k, bool) and k > 0 and k % 2 for k in kernel_sizes
            )
            and kernel_sizes[0] <= 21
        ):
            raise ValueError(
                f"kernel_sizes must be three positive odd ints, the first at most 21; got {kernel_sizes!r}"
            )
        first, second, third = map(int, kernel_sizes)
        features = _Features(
            *_conv_block(in_channels, 32, first, batch_norm),
            nn.MaxPool2d(2),
            *_conv_block(32, 64, second, batch_norm, padding=second // 2),
            nn.MaxPool2d(2),
            *_conv_block(64, 128, third, batch_norm, padding=third // 2),
            nn.MaxPool2d(2),
        )
        side = (IMAGE_SIZE - first + 1) // 8
        super().__init__(features, 128 * side * side, hidden_units, dropout, n_classes)


class FastCNN(_ConvNet):
    """Three thin convolutional stages, each pooling before its batch norm: the fastest network here.

    conv 5x5 (16) -> max-pool 2 -> [BN] -> ReLU -> conv 3x3 (32, padded) ->
    max-pool 2 -> [BN] -> ReLU -> conv 3x3 (64, padded) -> max-pool 2 -> [BN]
    -> ReLU -> flatten (576) -> linear (128) -> ReLU -> dropout -> linear
    (n_classes): :class:`DeepCNN`'s shape at half its width, about 99,000
    parameters and 1.6 million multiply-adds per image. Pooling straight
    after each convolution means batch norm and ReLU, whose backward passes
    cost more than the convolutions' in a network this thin, run on a
    quarter of the pixels (figures in docs/benchmarks.md).

    Parameters
    ----------
    n_classes : int, default=10
        Number of outputs.
    in_channels : int, default=1
        Channels of the 28x28 input images.
    dropout : float, default=0.5
        Dropout probability before the output layer.
    batch_norm : bool, default=False
        Whether to put batch normalization after each pooling.
    hidden_units : int, default=128
        Width of the fully connected hidden layer.

    See Also
    --------
    DeepCNN : The same shape at twice the width.
    sk_mnist.MNISTCNNClassifier : Trains it with the default ``architecture="fast"``.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import FastCNN
    >>> FastCNN()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_classes=10, in_channels=1, dropout=0.5, batch_norm=False, hidden_units=128):
        layers = []
        for c_in, c_out, size, padding in [(in_channels, 16, 5, 0), (16, 32, 3, 1), (32, 64, 3, 1)]:
            conv, norm, relu = _conv_block(c_in, c_out, size, batch_norm, padding)
            layers += [conv, nn.MaxPool2d(2), norm, relu]
        # A plain Sequential: no batch norm follows a convolution directly, so none can be folded.
        super().__init__(nn.Sequential(*layers), 64 * 3 * 3, hidden_units, dropout, n_classes)


#: Architectures selectable by name through ``MNISTCNNClassifier(architecture=...)``.
ARCHITECTURES = {"fast": FastCNN, "lenet": LeNet, "small": SmallCNN, "deep": DeepCNN}


def expand_output(network, n_outputs, positions):
    """Widen a network's output layer, keeping what the existing units learnt.

    The output layer is the network's last ``nn.Linear``. Existing unit ``i``
    moves to ``positions[i]``; the other units are new, initialized as
    PyTorch initializes a fresh layer.

    Parameters
    ----------
    network : nn.Module
        The network, changed in place.
    n_outputs : int
        The new number of outputs.
    positions : sequence of int
        For each existing output unit, its index in the widened layer.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import LeNet, expand_output
    >>> net = LeNet(n_classes=2)
    >>> old = net.classifier[-1].weight.detach().clone()
    >>> expand_output(net, 3, [0, 2])
    >>> torch.equal(net.classifier[-1].weight[[0, 2]], old)
    True
    """
    name = _output_layer_name(network)
    old = network.get_submodule(name)
    new = nn.Linear(old.in_features, n_outputs, device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight[positions] = old.weight
        new.bias[positions] = old.bias
    parent, _, attribute = name.rpartition(".")
    setattr(network.get_submodule(parent), attribute, new)


def output_layer(network):
    """A network's output layer: its last ``nn.Linear``.

    Parameters
    ----------
    network : nn.Module
        The network.

    Returns
    -------
    layer : nn.Linear
        The layer whose outputs are the logits.

    Examples
    --------
    >>> from sk_mnist.modules import LeNet, output_layer
    >>> output_layer(LeNet(n_classes=3)).out_features
    3
    """
    return network.get_submodule(_output_layer_name(network))


def _output_layer_name(network):
    return [name for name, module in network.named_modules() if isinstance(module, nn.Linear)][-1]


class DistillationLoss(nn.Module):
    """Knowledge-distillation loss of Hinton et al. (2015).

    ``alpha * T**2 * KL(teacher_T || softmax(logits / T)) + (1 - alpha) *
    cross_entropy(logits, labels)``, where ``teacher_T`` are the teacher's
    probabilities softened at temperature ``T``. The ``T**2`` keeps the
    gradient scale of the soft term independent of the temperature. The
    labels' term may be smoothed (``label_smoothing``).

    The target is one tensor per batch: column 0 holds the class indices,
    the other columns the softened teacher probabilities. A class index of
    -1 marks an unlabelled sample: its labels' term is 0, and the soft term
    alone, weighted by ``alpha``, is its loss.

    Parameters
    ----------
    temperature : float, default=4.0
        The softening temperature ``T`` (applied to the student's logits; the
        teacher's probabilities come softened already).
    alpha : float, default=0.7
        Weight of the soft (teacher) term; ``1 - alpha`` weighs the labels.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy with the labels.
    reduction : {"mean", "none"}, default="mean"
        "mean" averages the loss over the batch; "none" returns each
        sample's loss, as torch's losses do.

    See Also
    --------
    sk_mnist.DistilledCNNClassifier : Trains a student network on this loss.
    torch.nn.KLDivLoss : The soft term's divergence.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import DistillationLoss
    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> target = torch.tensor([[0.0, 0.9, 0.1]])  # label 0, teacher 90% on class 0
    >>> float(DistillationLoss(temperature=1.0, alpha=0.0)(logits, target)) == float(
    ...     torch.nn.functional.cross_entropy(logits, torch.tensor([0])))
    True
    """

    def __init__(self, temperature=4.0, alpha=0.7, label_smoothing=0.0, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none'; got {reduction!r}.")
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction

    def forward(self, logits, target):
        """Compute the loss of a batch.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_samples, n_classes)
            The student's logits.
        target : torch.Tensor of shape (n_samples, 1 + n_classes)
            Class indices in column 0 (-1 for an unlabelled sample), the
            teacher's softened probabilities in the other columns.

        Returns
        -------
        loss : torch.Tensor of shape () or (n_samples,)
            The loss, averaged over the batch, or per sample with
            ``reduction="none"``.
        """
        labels, soft = target[:, 0].long(), target[:, 1:]
        log_student = F.log_softmax(logits / self.temperature, dim=1)
        soft_loss = F.kl_div(log_student, soft, reduction="none").sum(dim=1) * self.temperature**2
        hard_loss = F.cross_entropy(
            logits, labels, label_smoothing=self.label_smoothing, reduction="none", ignore_index=-1
        )
        loss = self.alpha * soft_loss + (1 - self.alpha) * hard_loss
        return loss.mean() if self.reduction == "mean" else loss


class ImageView(nn.Module):
    """Turn rows of features into float images of side ``size``.

    Rows with fewer values than the image holds are zero-padded (a small
    canvas for tabular data); images of another side are resized bilinearly,
    so that every architecture sees ``size x size`` inputs. The images are
    handed on in channels-last memory order, in which PyTorch's CPU
    convolutions run faster (figures in docs/benchmarks.md).

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)`` of one input image.
    size : int, default=28
        Side of the images handed on.

    See Also
    --------
    RandomAffine : The layer that follows it in training.
    Standardize : The layer that standardizes its images.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import ImageView
    >>> ImageView((1, 8, 8))(torch.zeros(3, 64, dtype=torch.uint8)).shape
    torch.Size([3, 1, 28, 28])
    """

    def __init__(self, image_shape, size=IMAGE_SIZE):
        super().__init__()
        self.image_shape = tuple(int(d) for d in image_shape)
        self.size = int(size)

    def forward(self, x):
        """Turn a batch of rows into images.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_features)
            Rows of pixels of any numeric dtype, with at most as many values
            as ``image_shape`` holds.

        Returns
        -------
        images : torch.Tensor of shape (n_samples, channels, size, size)
            The images in float32, in channels-last memory order.
        """
        x = x.float()
        missing = math.prod(self.image_shape) - x.shape[1]
        if missing:
            x = F.pad(x, (0, missing))
        x = x.reshape(-1, *self.image_shape)
        if self.image_shape[1:] != (self.size, self.size):
            shrinking = max(self.image_shape[1:]) > self.size
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=shrinking
            )
        return x.contiguous(memory_format=torch.channels_last)


class Standardize(nn.Module):
    """Subtract a mean and divide by a standard deviation, both scalars.

    In the estimator's network these are the mean and standard deviation of
    the training pixels. They are stored as buffers, so they belong to the
    module's state dict and to an exported graph.

    Parameters
    ----------
    mean : float
        Value subtracted.
    std : float
        Value divided by; must be positive.

    See Also
    --------
    ImageView : The layer whose images it standardizes.
    sk_mnist.preprocessing.GlobalStandardizer : The same, as a scikit-learn transformer.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import Standardize
    >>> Standardize(1.0, 2.0)(torch.tensor([3.0]))
    tensor([1.])
    """

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x):
        """Standardize a tensor.

        Parameters
        ----------
        x : torch.Tensor
            Values of any shape.

        Returns
        -------
        standardized : torch.Tensor
            ``(x - mean) / std``, of the same shape.
        """
        return (x - self.mean) / self.std


class Deskew(nn.Module):
    """Straighten slanted digits: the deskewing of :class:`~sk_mnist.preprocessing.Deskewer`.

    ``Deskewer`` runs this module in float64; the ONNX export runs it in
    float32, before the network.

    Each image is sheared about its centre so that its ink's principal axis is
    vertical, and shifted so that the ink's centre of mass lands on the image
    centre. Moments are taken over the ink above the image's darkest value
    (its background), which is added back afterwards; sampling is bilinear,
    with zeros outside the image. A blank image is returned unchanged.

    Parameters
    ----------
    height : int
        Rows of the canvas the pixels lie on.
    width : int
        Columns of the canvas.
    n_features : int
        Pixels per input row: the first ``n_features`` cells of the canvas,
        row by row (the rest of it is blank).

    See Also
    --------
    sk_mnist.preprocessing.Deskewer : The same, as a scikit-learn transformer.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import Deskew
    >>> image = torch.zeros(5, 5)
    >>> image[range(5), range(5)] = 1.0  # a stroke leaning 45 degrees
    >>> Deskew(5, 5, 25)(image.reshape(1, 25)).reshape(5, 5)[:, 2]  # now upright, in the middle column
    tensor([1., 1., 1., 1., 1.])
    """

    def __init__(self, height, width, n_features):
        super().__init__()
        self.height, self.width, self.n_features = height, width, n_features
        self.register_buffer("rows", torch.arange(height, dtype=torch.float32)[None, :, None])
        self.register_buffer("cols", torch.arange(width, dtype=torch.float32)[None, None, :])

    def forward(self, x):
        """Deskew a batch of pixel rows.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, n_features)
            Pixel rows.

        Returns
        -------
        deskewed : torch.Tensor of shape (n_samples, n_features)
            The deskewed pixel rows.
        """
        height, width = self.height, self.width
        images = F.pad(x, (0, height * width - self.n_features)).reshape(-1, height, width)
        rows, cols = self.rows.to(x.dtype), self.cols.to(x.dtype)
        background = images.amin(dim=(1, 2), keepdim=True)
        ink = images - background
        total = ink.sum(dim=(1, 2), keepdim=True)
        has_ink = total > 0
        weights = torch.where(has_ink, ink / total, 0.0)
        row_mass = (weights * rows).sum(dim=(1, 2), keepdim=True)
        col_mass = (weights * cols).sum(dim=(1, 2), keepdim=True)
        row_var = (weights * (rows - row_mass) ** 2).sum(dim=(1, 2), keepdim=True)
        covariance = (weights * (rows - row_mass) * (cols - col_mass)).sum(dim=(1, 2), keepdim=True)
        skew = torch.where(row_var > 0, covariance / row_var, 0.0)
        centre_row, centre_col = (height - 1) / 2, (width - 1) / 2
        src_rows = torch.where(has_ink, rows - centre_row + row_mass, rows).expand_as(images)
        src_cols = torch.where(has_ink, skew * (rows - centre_row) + cols - centre_col + col_mass, cols)
        # grid_sample's coordinates, with align_corners=False: pixel i of n
        # has its centre at (2i + 1) / n - 1.
        grid = torch.stack([(2 * src_cols + 1) / width - 1, (2 * src_rows + 1) / height - 1], dim=-1)
        sampled = F.grid_sample(
            ink[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return (sampled[:, 0] + background).reshape(-1, height * width)[:, : self.n_features]


class RandomAffine(nn.Module):
    """Random rotation, scaling and shift of whole batches, in training only.

    Each image of a batch gets its own transformation, drawn from torch's
    random number generator, and all are applied at once with one affine
    grid. Pixels brought in from outside the image repeat the border, which is
    background for digits whatever scaling the pixels have. In evaluation
    mode the module is the identity.

    Parameters
    ----------
    degrees : float, default=15
        Rotations are drawn uniformly from ``[-degrees, degrees]``.
    scale : tuple of float, default=(0.9, 1.1)
        Scale factors are drawn uniformly from this interval.
    translate : float, default=0.1
        Shifts are drawn uniformly from ``[-translate, translate]`` times the
        image side, independently along each axis. They move the sampling
        grid: the output's centre shows the input at that offset from the
        input's centre, so the digit itself moves by the shift rotated and
        scaled (up to ``max(scale) * (cos + sin)(degrees) * translate`` of the
        side along an axis).
    p : float, default=1.0
        Probability that an image is transformed; the others pass as they
        are, so that the network also trains on images that no interpolation
        has blurred, such as those it will predict.

    See Also
    --------
    ImageView : The layer whose images it transforms.
    sk_mnist.MNISTCNNClassifier : Applies it with ``augment=True`` (or a float, its ``p``).

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import RandomAffine
    >>> augment = RandomAffine().eval()
    >>> x = torch.rand(4, 1, 28, 28)
    >>> torch.equal(augment(x), x)
    True
    """

    def __init__(self, degrees=15.0, scale=(0.9, 1.1), translate=0.1, p=1.0):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"p is a probability, in [0, 1]; got {p!r}")
        self.degrees = float(degrees)
        self.scale = tuple(float(s) for s in scale)
        self.translate = float(translate)
        self.p = float(p)

    def forward(self, x):
        """Transform each image of a batch at random, in training mode.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, channels, height, width)
            A batch of images.

        Returns
        -------
        transformed : torch.Tensor of shape (n_samples, channels, height, width)
            In training mode the images, each transformed with probability
            ``p``; ``x`` itself in evaluation mode.
        """
        if not self.training:
            return x
        transformed = _affine(x, *self._draw(x))
        if self.p == 1.0:
            # No draw for which to keep, so that seeded fits that transform
            # every image stay as they were before p existed.
            return transformed
        kept = torch.rand(x.shape[0], device=x.device) >= self.p
        return torch.where(kept.view(-1, 1, 1, 1), x, transformed)

    def _draw(self, x):
        """Each image's ``(angle, scale, shift_x, shift_y)`` for :func:`_affine`, as tensors."""
        # Drawn in this order (angle, scale, shifts), which seeded fits depend on.
        angle = torch.deg2rad(_uniform(x, -self.degrees, self.degrees))
        scale = _uniform(x, *self.scale)
        shift_x = _uniform(x, -self.translate, self.translate)
        shift_y = _uniform(x, -self.translate, self.translate)
        return angle, scale, shift_x, shift_y


def _uniform(x, low, high):
    """One number per image of the batch ``x``, uniform in ``[low, high)``, from torch's generator."""
    return torch.rand(x.shape[0], device=x.device) * (high - low) + low


def _affine(x, angle, scale, shift_x, shift_y):
    """Rotate, scale and shift each image of a batch about its centre.

    ``angle`` (radians), ``scale`` and the shifts (in image sides, of the
    sampling grid) are tensors of shape ``(n_samples,)``. Bilinear
    sampling; pixels from outside the image repeat the border.
    """
    return _resample(x, _affine_grid(x.shape, angle, scale, shift_x, shift_y))


def _affine_grid(shape, angle, scale, shift_x, shift_y):
    """The sampling grid of :func:`_affine`, of shape ``(n_samples, height, width, 2)``.

    Separate from the resampling, so that a caller can displace the grid
    before sampling (benchmarks/bench_augment_variants.py's elastic
    distortion).
    """
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid's coordinates span [-1, 1]: a shift of t image sides is 2t.
    theta = torch.stack(
        [torch.stack([cos, -sin, 2 * shift_x], 1), torch.stack([sin, cos, 2 * shift_y], 1)], 1
    )
    return F.affine_grid(theta, list(shape), align_corners=False)


def _resample(x, grid):
    """Sample a batch at ``grid``, bilinearly; pixels from outside repeat the border."""
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


#: The views of test-time augmentation besides the image itself, as
#: ``(degrees, scale)``: rotations and scalings about the centre, small draws
#: from the range of :class:`RandomAffine`.
TTA_VIEWS = ((5.0, 1.0), (-5.0, 1.0), (0.0, 0.95), (0.0, 1.05))


def tta_views(x):
    """The images of a batch and their :data:`TTA_VIEWS`.

    Parameters
    ----------
    x : torch.Tensor of shape (n_samples, channels, height, width)
        A batch of images.

    Yields
    ------
    view : torch.Tensor of shape (n_samples, channels, height, width)
        ``x`` itself, then each view of :data:`TTA_VIEWS` in turn.

    See Also
    --------
    RandomAffine : The training-time transformations the views are drawn from.
    sk_mnist.MNISTCNNClassifier : Averages its predictions over the views
        with ``test_time_augmentation=True``.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import tta_views
    >>> x = torch.rand(4, 1, 28, 28)
    >>> views = list(tta_views(x))
    >>> len(views), views[0] is x, views[1].shape
    (5, True, torch.Size([4, 1, 28, 28]))
    """
    yield x

    def full(value):
        return torch.full(x.shape[:1], value, dtype=x.dtype, device=x.device)

    for degrees, scale in TTA_VIEWS:
        yield _affine(x, torch.deg2rad(full(degrees)), full(scale), full(0.0), full(0.0))
