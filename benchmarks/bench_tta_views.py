"""Choosing the views of test-time augmentation, on a held-out split.

Usage:
    python benchmarks/bench_accuracy.py --config frontier --holdout 10000 --seeds 0 --param augment=True --save-dir models
    python benchmarks/bench_tta_views.py models/frontier-holdout10000-seed0.skm --holdout 10000

Scores a model fitted on the first 60,000 - N training images (as
``bench_accuracy.py --holdout N --save-dir`` keeps it) on the last N, never on
the test set: first each candidate view alone, then the mean of the
probabilities of each image and of a set of views. Prints a markdown table:
per set, its accuracy, the images it fixes and breaks against the image alone,
and the log loss; then the classifier's own ``test_time_augmentation=True``
(the views of ``sk_mnist.modules.TTA_VIEWS``), which must equal its row.
"""

import argparse
import math

import numpy as np
import torch
from sklearn.metrics import log_loss

import sk_mnist
from sk_mnist import load_mnist
from sk_mnist.modules import TTA_VIEWS, _affine

SHIFTS_1 = [(0, 1, 1, 0), (0, 1, -1, 0), (0, 1, 0, 1), (0, 1, 0, -1)]
SHIFTS_HALF = [(0, 1, 0.5, 0), (0, 1, -0.5, 0), (0, 1, 0, 0.5), (0, 1, 0, -0.5)]
ROTATIONS_5 = [(5, 1, 0, 0), (-5, 1, 0, 0)]
ROTATIONS_10 = [(10, 1, 0, 0), (-10, 1, 0, 0)]
SCALINGS = [(0, 0.95, 0, 0), (0, 1.05, 0, 0)]
#: Candidate sets of views, as (degrees, scale, x shift, y shift in pixels).
SETS = {
    "shifts of 1 pixel": SHIFTS_1,
    "shifts of half a pixel": SHIFTS_HALF,
    "rotations of 5 degrees": ROTATIONS_5,
    "rotations of 10 degrees": ROTATIONS_10,
    "scalings 0.95 and 1.05": SCALINGS,
    "rotations of 5 degrees and scalings": ROTATIONS_5 + SCALINGS,
    "the same and shifts of half a pixel": ROTATIONS_5 + SCALINGS + SHIFTS_HALF,
    "all of the above": SHIFTS_1 + SHIFTS_HALF + ROTATIONS_5 + ROTATIONS_10 + SCALINGS,
}


def transformed(X, degrees, scale, dx, dy):
    """Rows of 28 x 28 images rotated, scaled and shifted about their centre, as float32 rows."""
    images = torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 28, 28)

    def full(value):
        return torch.full(images.shape[:1], float(value))

    # A shift of d pixels moves the sampling grid by d / 28 of the side.
    moved = _affine(images, full(math.radians(degrees)), full(scale), full(dx / 28), full(dy / 28))
    return moved.reshape(len(X), -1).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model file fitted without the last N training images")
    parser.add_argument("--holdout", type=int, default=10000, help="N: the held-out images it is scored on")
    args = parser.parse_args()

    clf = sk_mnist.load(args.model).set_params(test_time_augmentation=False)
    X, y = load_mnist("train", return_X_y=True)
    X, y = X[-args.holdout :], y[-args.holdout :]
    alone = clf.predict_proba(X)
    right_alone = clf.classes_[alone.argmax(1)] == y
    views = {view: clf.predict_proba(transformed(X, *view)) for view in dict.fromkeys(sum(SETS.values(), []))}

    def row(name, n_views, proba):
        right = clf.classes_[proba.argmax(1)] == y
        fixed, broken = np.sum(right & ~right_alone), np.sum(~right & right_alone)
        loss = log_loss(y, proba, labels=clf.classes_)
        print(f"| {name} | {n_views} | {right.mean():.2%} | {fixed} | {broken} | {loss:.4f} |")

    print(f"{args.model}, scored on the last {args.holdout:,} training images")
    print()
    print("| views | predictions per image | accuracy | fixed | broken | log loss |")
    print("|---|---|---|---|---|---|")
    row("the image alone", 1, alone)
    for view, proba in views.items():
        row(f"only: {view[0]} degrees, scale {view[1]}, shift ({view[2]}, {view[3]}) px", 1, proba)
    for name, members in SETS.items():
        row(f"the image and {name}", 1 + len(members), np.mean([alone, *(views[v] for v in members)], axis=0))
    row(
        "test_time_augmentation=True",
        1 + len(TTA_VIEWS),
        clf.set_params(test_time_augmentation=True).predict_proba(X),
    )


if __name__ == "__main__":
    main()
