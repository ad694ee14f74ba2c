"""Held-out accuracy of the frontier recipe under augmentations it does not use.

Usage:
    python benchmarks/bench_augment_variants.py erase --seed 0
    python benchmarks/bench_augment_variants.py translate --seed 0
    python benchmarks/bench_augment_variants.py elastic --seed 0

Fits ``bench_accuracy.py --config frontier`` on the first 50,000 training
images with its ``RandomAffine`` layer replaced by a variant, and prints the
fit time and the accuracy on the last 10,000 training images, with and
without test-time augmentation: the split on which ``bench_accuracy.py
--config frontier --holdout 10000`` scores the recipe itself. The variants,
each transforming the same share of the images as the recipe (``augment``):

``erase``
    Random erasing (Zhong et al. 2017): each transformed image, with
    probability one half, also loses a rectangle of 2-20% of its area,
    of aspect ratio log-uniform in [0.3, 3.3] and centred anywhere, to its
    background (the image's lowest pixel). The images left as they are stay
    untouched.
``translate``
    Shifts of up to 15% of the side instead of 10%.
``elastic``
    Elastic distortion (Simard et al. 2003): each transformed image's
    sampling grid is also displaced by a random field, uniform in [-1, 1]
    per pixel and axis, smoothed by a Gaussian of 4 pixels' sigma and scaled
    by 34 pixels, in the same resampling as the affine transformation.

The variants are not parameters of the estimator because they did not pay
(docs/benchmarks.md); the script keeps their figures reproducible.
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from _params import CONFIGS, add_param_option

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist.modules import RandomAffine, _affine, _affine_grid, _resample, _uniform

HOLDOUT = 10_000


class _Variant(RandomAffine):
    """``RandomAffine`` whose transformed images go through :meth:`transform`.

    The draws come in the order the script's figures were measured with:
    the affine transformation's, which images to keep (drawn also when ``p``
    is 1), then the variant's own.
    """

    def forward(self, x):
        if not self.training:
            return x
        affine = self._draw(x)
        kept = torch.rand(x.shape[0], device=x.device) >= self.p
        return torch.where(kept.view(-1, 1, 1, 1), x, self.transform(x, affine))


class RandomErasing(_Variant):
    """Random erasing of half of the transformed images."""

    def transform(self, x, affine):
        transformed = _affine(x, *affine)
        _, _, height, width = x.shape
        erased = torch.rand(x.shape[0], device=x.device) < 0.5
        area = _uniform(x, 0.02, 0.2) * height * width
        ratio = torch.exp(_uniform(x, math.log(0.3), math.log(3.3)))
        box_height = torch.sqrt(area * ratio).clamp(max=height).view(-1, 1, 1)
        box_width = torch.sqrt(area / ratio).clamp(max=width).view(-1, 1, 1)
        centre_row = _uniform(x, 0, height).view(-1, 1, 1)
        centre_col = _uniform(x, 0, width).view(-1, 1, 1)
        rows = torch.arange(height, device=x.device).view(1, -1, 1) + 0.5
        cols = torch.arange(width, device=x.device).view(1, 1, -1) + 0.5
        box = (
            ((rows - centre_row).abs() < box_height / 2)
            & ((cols - centre_col).abs() < box_width / 2)
            & erased.view(-1, 1, 1)
        )
        background = transformed.amin(dim=(1, 2, 3), keepdim=True)
        return torch.where(box[:, None], background, transformed)


class ElasticAffine(_Variant):
    """Elastic distortion of the transformed images, in the affine transformation's resampling."""

    sigma, alpha = 4.0, 34.0

    def transform(self, x, affine):
        n, _, height, width = x.shape
        field = torch.rand(n, 2, height, width, device=x.device, dtype=x.dtype) * 2 - 1
        radius = int(3 * self.sigma)
        taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, device=x.device) / self.sigma) ** 2)
        taps = (taps / taps.sum()).to(x.dtype)
        # The separable Gaussian, per axis of the field (zero beyond the image).
        field = F.conv2d(field, taps.view(1, 1, -1, 1).expand(2, 1, -1, 1), padding=(radius, 0), groups=2)
        field = F.conv2d(field, taps.view(1, 1, 1, -1).expand(2, 1, 1, -1), padding=(0, radius), groups=2)
        # Pixels to grid units ([-1, 1] spans the side), in the grid's (x, y) order.
        scale = torch.tensor([2 / width, 2 / height], device=x.device, dtype=x.dtype)
        displacement = self.alpha * field.permute(0, 2, 3, 1) * scale
        return _resample(x, _affine_grid(x.shape, *affine) + displacement)


VARIANTS = {
    "erase": lambda p: RandomErasing(p=p),
    "translate": lambda p: RandomAffine(translate=0.15, p=p),
    "elastic": lambda p: ElasticAffine(p=p),
}


def classifier_with(augmentation):
    """``MNISTCNNClassifier`` whose augmentation layer is ``augmentation(p)``, ``p`` its ``augment``."""

    class Classifier(MNISTCNNClassifier):
        def initialize_module(self):
            super().initialize_module()
            self.module_.augment = augmentation(float(self.augment))
            return self

    return Classifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    add_param_option(parser, "a parameter of the fit, on top of the frontier recipe")
    args = parser.parse_args()
    params = {**CONFIGS["frontier"], **dict(args.param), "random_state": args.seed}
    if not params.get("augment"):
        parser.error("the variants replace the augmentation: augment must not be False or 0")

    X, y = load_mnist("train", return_X_y=True)
    X, y, X_held, y_held = X[:-HOLDOUT], y[:-HOLDOUT], X[-HOLDOUT:], y[-HOLDOUT:]
    print(f"variant {args.variant} on the frontier recipe {params}; torch {torch.__version__}")
    start = time.perf_counter()
    clf = classifier_with(VARIANTS[args.variant])(**params).fit(X, y)
    print(f"fit on {len(X):,} images: {time.perf_counter() - start:.0f} s")
    for tta in (True, False):
        accuracy = clf.set_params(test_time_augmentation=tta).score(X_held, y_held)
        print(f"held-out accuracy {'with' if tta else 'without'} test-time augmentation: {accuracy:.2%}")


if __name__ == "__main__":
    main()
