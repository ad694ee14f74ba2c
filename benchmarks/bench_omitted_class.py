"""Hinton's omitted class: a student whose transfer set holds no image of one digit.

Usage: python benchmarks/bench_omitted_class.py [--omit 3] [--seeds 0 1 2 3 4]
       [--per-class 10] [--json]

The protocol (Hinton, Vinyals and Dean 2015, section 3), fixed before any
test image was scored:

- the teacher, the default recipe without label smoothing
  (``MNISTCNNClassifier(label_smoothing=0.0)``), learns all 60,000 training
  images, every class;
- the student, ``DistilledCNNClassifier(teacher)`` with its defaults, learns
  from the training images without a single ``--omit`` (labels and the
  teacher's soft labels); a fitted teacher's classes are the student's, so
  the student has an output for the omitted digit it never saw;
- the bias correction: ``DistilledCNNClassifier.fit_output_bias`` on
  ``--per-class`` training images of each class, drawn with the seed (the
  omitted digit included): the output biases that maximize the likelihood
  of those few labels, every weight kept.

Reports the student's accuracy on the test images of the omitted digit and on
all test images, before and after the correction, and the teacher's. With
``--json``, one final JSON line holds the per-seed figures.
"""

import argparse
import json
import time

import numpy as np
import torch

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, load_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omit", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print a final JSON line")
    args = parser.parse_args()
    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    omitted = y_test == args.omit
    figures = {key: [] for key in ("teacher", "before", "after")}
    times = []

    def accuracies(clf):
        predicted = clf.predict(X_test)
        return float(np.mean(predicted[omitted] == args.omit)), float(np.mean(predicted == y_test))

    for seed in args.seeds:
        start = time.perf_counter()
        teacher = MNISTCNNClassifier(label_smoothing=0.0, random_state=seed).fit(X, y)
        kept = y != args.omit
        student = DistilledCNNClassifier(teacher, random_state=seed).fit(X[kept], y[kept])
        times.append(time.perf_counter() - start)
        figures["teacher"].append(accuracies(teacher))
        figures["before"].append(accuracies(student))
        rng = np.random.default_rng(seed)
        few = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), args.per_class, replace=False) for c in np.unique(y)]
        )
        figures["after"].append(accuracies(student.fit_output_bias(X[few], y[few])))
        print(
            f"seed {seed}: "
            + ", ".join(
                f"{k} {v[-1][0]:.2%} of the {args.omit}s, {v[-1][1]:.2%} overall" for k, v in figures.items()
            )
            + f" ({times[-1]:.0f} s)",
            flush=True,
        )

    print(
        f"\nno {args.omit} in the transfer set; seeds {args.seeds}; {args.per_class} images per class for the bias"
    )
    print(f"| model | test {args.omit}s recognised (mean, min-max) | all test images (mean, min-max) |")
    print("|---|---|---|")
    for key, rows in figures.items():
        threes, overall = np.array(rows).T
        print(
            f"| {key} | {threes.mean():.2%} ({threes.min():.2%}-{threes.max():.2%}) | "
            f"{overall.mean():.2%} ({overall.min():.2%}-{overall.max():.2%}) |"
        )
    if args.json:
        print(json.dumps({"omit": args.omit, "seeds": args.seeds, "figures": figures, "fit_seconds": times}))


if __name__ == "__main__":
    main()
