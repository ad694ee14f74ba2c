"""Few labels, many unlabelled digits: a distilled student against the same student alone.

Usage: python benchmarks/bench_semi_supervised.py [--labels 300] [--seeds 0 1 2 3 4]
       [--methods alone teacher distilled self-training] [--json]

The protocol, fixed before any test image was scored:

- ``--labels`` training images keep their label, the same number per class,
  drawn with the seed; the other images of the 60,000 are unlabelled (-1).
- "alone": the student network (``architecture="small"``) trained on the
  labelled images only, batches of 32, for as many mini-batch steps as the
  distilled student takes (12 epochs of 60,000 images in batches of 256:
  2,820 steps), so that both see the same number of updates.
- "alone-12-epochs": the same student with the distilled student's own
  parameters (12 epochs, batches of 256) on the labelled images: 24 steps on
  300 images, what a fit of the labelled images with those parameters gives.
- "teacher": the default recipe (``MNISTCNNClassifier()``, without label
  smoothing), trained as "alone" on the labelled images; the distilled
  student fits it, and its own score is reported.
- "distilled": ``DistilledCNNClassifier(teacher)`` on all 60,000 images with
  the -1 labels, its defaults otherwise (12 epochs, T=4, alpha=0.7).
- "self-training": scikit-learn's ``SelfTrainingClassifier`` around "alone"
  (its defaults: threshold 0.75, at most 10 rounds), each round's student
  trained for the same number of steps.

Prints one line per model and seed, a table of means, and with ``--json`` one
final JSON line: ``{"labels": ..., "seeds": [...], "accuracies": {method:
[...]}, "fit_seconds": {method: [...]}, "mean": {method: ...}}``.
"""

import argparse
import json
import math
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.semi_supervised import SelfTrainingClassifier

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, load_mnist

METHODS = ("alone", "alone-12-epochs", "teacher", "distilled", "self-training")
STUDENT_EPOCHS, STUDENT_BATCH = 12, 256
SMALL_BATCH = 32


class FixedSteps(ClassifierMixin, BaseEstimator):
    """``estimator`` trained for about ``steps`` mini-batches, whatever the data's size.

    ``max_epochs`` is set from the number of samples at each fit, so that a
    self-training round on 300 images and one on 50,000 take the same steps.
    """

    def __init__(self, estimator, steps):
        self.estimator = estimator
        self.steps = steps

    def fit(self, X, y):
        epochs = max(1, round(self.steps * self.estimator.batch_size / len(X)))
        self.estimator_ = clone(self.estimator).set_params(max_epochs=epochs).fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        return self.estimator_.predict(X)


def labelled_subset(y, n_labels, seed):
    """Indices of ``n_labels`` samples, the same number per class, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    per_class = n_labels // len(classes)
    return np.sort(
        np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in classes])
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--json", action="store_true", help="print a final JSON line")
    args = parser.parse_args()
    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    steps = STUDENT_EPOCHS * math.ceil(len(X) / STUDENT_BATCH)
    accuracies = {method: [] for method in args.methods}
    seconds = {method: [] for method in args.methods}

    def record(method, seed, clf, elapsed):
        accuracies[method].append(clf.score(X_test, y_test))
        seconds[method].append(elapsed)
        print(f"{method:>13} seed {seed}: {accuracies[method][-1]:.2%} in {elapsed:.0f} s", flush=True)

    for seed in args.seeds:
        labelled = labelled_subset(y, args.labels, seed)
        y_partial = np.full_like(y, -1)
        y_partial[labelled] = y[labelled]
        alone = FixedSteps(
            MNISTCNNClassifier(architecture="small", batch_size=SMALL_BATCH, random_state=seed), steps
        )
        teacher = MNISTCNNClassifier(
            label_smoothing=0.0,
            batch_size=SMALL_BATCH,
            max_epochs=round(steps * SMALL_BATCH / args.labels),
            random_state=seed,
        )
        if "alone" in args.methods:
            start = time.perf_counter()
            record("alone", seed, alone.fit(X[labelled], y[labelled]), time.perf_counter() - start)
        if "alone-12-epochs" in args.methods:
            start = time.perf_counter()
            same_epochs = MNISTCNNClassifier(
                architecture="small", max_epochs=STUDENT_EPOCHS, batch_size=STUDENT_BATCH, random_state=seed
            )
            record(
                "alone-12-epochs",
                seed,
                same_epochs.fit(X[labelled], y[labelled]),
                time.perf_counter() - start,
            )
        if {"teacher", "distilled"} & set(args.methods):
            start = time.perf_counter()
            teacher = teacher.fit(X[labelled], y[labelled])
            if "teacher" in args.methods:
                record("teacher", seed, teacher, time.perf_counter() - start)
        if "distilled" in args.methods:
            start = time.perf_counter()
            student = DistilledCNNClassifier(
                teacher, max_epochs=STUDENT_EPOCHS, batch_size=STUDENT_BATCH, random_state=seed
            )
            record("distilled", seed, student.fit(X, y_partial), time.perf_counter() - start)
        if "self-training" in args.methods:
            start = time.perf_counter()
            self_training = SelfTrainingClassifier(alone, verbose=True).fit(X, y_partial)
            record("self-training", seed, self_training, time.perf_counter() - start)

    means = {method: float(np.mean(values)) for method, values in accuracies.items()}
    print(f"\n{args.labels} labels, seeds {args.seeds}")
    print("| model | mean | min | max | sd | fit time |")
    print("|---|---|---|---|---|---|")
    for method, values in accuracies.items():
        print(
            f"| {method} | {means[method]:.2%} | {min(values):.2%} | {max(values):.2%} | "
            f"{np.std(values, ddof=1) if len(values) > 1 else 0:.2%} | "
            f"{min(seconds[method]):.0f}-{max(seconds[method]):.0f} s |"
        )
    if args.json:
        print(
            json.dumps(
                {
                    "labels": args.labels,
                    "seeds": args.seeds,
                    "accuracies": accuracies,
                    "fit_seconds": seconds,
                    "mean": means,
                }
            )
        )


if __name__ == "__main__":
    main()
