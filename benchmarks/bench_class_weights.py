"""Class weights on a rare digit: recall of the rare class with and without class_weight="balanced".

Usage: python benchmarks/bench_class_weights.py [--train-size 10000] [--rare 30] [--seeds 0]

The first ``--train-size`` training images, all of them but ``--rare`` of the
3s removed; the default recipe fitted unweighted and with
``class_weight="balanced"`` at each seed, scored on the 10,000 test images:
accuracy, and recall and precision of the 3s. examples/class_weights.py shows
the same on small settings.
"""

import argparse
import time

import numpy as np
from sklearn.metrics import precision_score, recall_score
from sklearn.utils.class_weight import compute_sample_weight

from sk_mnist import MNISTCNNClassifier, load_mnist

RARE = 3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=10_000)
    parser.add_argument("--rare", type=int, default=30, help="3s kept in the training set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()

    X, y = load_mnist("train", return_X_y=True)
    X, y = X[: args.train_size], y[: args.train_size]
    keep = (y != RARE) | (np.cumsum(y == RARE) <= args.rare)
    X, y = X[keep], y[keep]
    X_test, y_test = load_mnist("test", return_X_y=True)
    weights = compute_sample_weight("balanced", y)
    ratio = weights[y == RARE][0] / weights[y != RARE].mean()
    print(
        f"{len(y):,} training images, {np.sum(y == RARE)} of them {RARE}s; 'balanced' weighs a {RARE} {ratio:.1f}x"
    )
    print(f"{'class_weight':<12} {'seed':>4} {'accuracy':>9} {'recall':>8} {'precision':>10} {'fit s':>6}")
    for seed in args.seeds:
        for class_weight in (None, "balanced"):
            start = time.perf_counter()
            clf = MNISTCNNClassifier(class_weight=class_weight, random_state=seed).fit(X, y)
            seconds = time.perf_counter() - start
            predicted = clf.predict(X_test)
            recall = recall_score(y_test, predicted, labels=[RARE], average="micro")
            precision = precision_score(y_test, predicted, labels=[RARE], average="micro", zero_division=0)
            accuracy = np.mean(predicted == y_test)
            print(
                f"{class_weight!s:<12} {seed:>4} {accuracy:>9.2%} {recall:>8.2%} {precision:>10.2%} {seconds:>6.1f}"
            )


if __name__ == "__main__":
    main()
