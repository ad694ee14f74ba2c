"""PyTorch modules: the digit networks and the layers that feed them.

Everything here is plain ``torch.nn``; nothing knows about skorch or
scikit-learn. The estimator composes a network as::

    ImageView -> RandomAffine (training only) -> Standardize -> architecture

so that a fitted ``module_`` maps raw feature rows to logits by itself, which
is also what gets exported.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ARCHITECTURES", "IMAGE_SIZE", "ImageView", "LeNet", "RandomAffine", "Standardize"]

#: Side of the square images every architecture here takes.
IMAGE_SIZE = 28


class LeNet(nn.Module):
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

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import LeNet
    >>> LeNet()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, n_classes=10, in_channels=1, dropout=0.5, batch_norm=False, hidden_units=500):
        super().__init__()

        def block(c_in, c_out):
            norm = nn.BatchNorm2d(c_out) if batch_norm else nn.Identity()
            # A convolution followed by batch norm needs no bias of its own.
            conv = nn.Conv2d(c_in, c_out, kernel_size=5, bias=not batch_norm)
            return [conv, norm, nn.ReLU(inplace=True), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(in_channels, 20), *block(20, 50))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(50 * 4 * 4, hidden_units),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden_units, n_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


#: Architectures selectable by name through ``MNISTCNNClassifier(architecture=...)``.
ARCHITECTURES = {"lenet": LeNet}


class ImageView(nn.Module):
    """Turn rows of features into float images of side ``size``.

    Rows with fewer values than the image holds are zero-padded (a small
    canvas for tabular data); images of another side are resized bilinearly,
    so that every architecture sees ``size x size`` inputs.

    Parameters
    ----------
    image_shape : tuple of int
        ``(channels, height, width)`` of one input image.
    size : int, default=28
        Side of the images handed on.

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
        return x


class Standardize(nn.Module):
    """Subtract a mean and divide by a standard deviation, both scalars.

    Parameters
    ----------
    mean : float
        Value subtracted.
    std : float
        Value divided by; must be positive.

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
        return (x - self.mean) / self.std


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
        image side, independently along each axis.

    Examples
    --------
    >>> import torch
    >>> from sk_mnist.modules import RandomAffine
    >>> augment = RandomAffine().eval()
    >>> x = torch.rand(4, 1, 28, 28)
    >>> torch.equal(augment(x), x)
    True
    """

    def __init__(self, degrees=15.0, scale=(0.9, 1.1), translate=0.1):
        super().__init__()
        self.degrees = float(degrees)
        self.scale = tuple(float(s) for s in scale)
        self.translate = float(translate)

    def forward(self, x):
        if not self.training:
            return x
        n = x.shape[0]

        def uniform(low, high):
            return torch.rand(n, device=x.device) * (high - low) + low

        angle = torch.deg2rad(uniform(-self.degrees, self.degrees))
        scale = uniform(*self.scale)
        # affine_grid's coordinates span [-1, 1]: a shift of t image sides is 2t.
        shift_x = uniform(-self.translate, self.translate) * 2
        shift_y = uniform(-self.translate, self.translate) * 2
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [torch.stack([cos, -sin, shift_x], 1), torch.stack([sin, cos, shift_y], 1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
