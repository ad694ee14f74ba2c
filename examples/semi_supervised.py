"""
Few labels, many unlabelled digits: distillation with -1 labels
===============================================================

Keeps the labels of a few training images (the same number per class) and
marks every other image unlabelled with -1, scikit-learn's convention for
semi-supervised learning. A teacher learns from the labelled images;
``DistilledCNNClassifier`` then trains a small student on the teacher's
softened probabilities for every image, labelled or not, and on the true
labels where they exist. The same student trained on the labelled images
alone is the comparison. Prints the three models' accuracies on the full
10,000-image test set and draws them. By default 100 labels among 10,000
training images: about 20 seconds on two CPU cores.

Run ``python examples/semi_supervised.py --help`` for the options;
``benchmarks/bench_semi_supervised.py`` runs the documented protocol on all
60,000 images.
"""

import argparse
import time

import matplotlib.pyplot as plt
import numpy as np

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, load_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-size", type=int, default=10_000, help="training images (default 10000)")
    parser.add_argument("--labels", type=int, default=100, help="images that keep their label (default 100)")
    parser.add_argument("--epochs", type=int, default=4, help="the student's epochs (default 4)")
    parser.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="mini-batches of the models fitted on the labels (default 1000)",
    )
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--plot", default="semi_supervised.png", help="where to save the figure")
    args = parser.parse_args(argv)

    X_train, y_train = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    X, y = X_train[: args.train_size], y_train[: args.train_size]
    # The same number of labels per class, the rest -1.
    rng = np.random.default_rng(args.random_state)
    per_class = args.labels // 10
    labelled = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)]
    )
    y_partial = np.full_like(y, -1)
    y_partial[labelled] = y[labelled]
    print(f"{len(labelled)} labelled images, {np.sum(y_partial == -1)} unlabelled")

    # On a few images, small batches and many epochs: --steps updates in all.
    few_label_params = {
        "batch_size": 32,
        "max_epochs": max(1, round(args.steps * 32 / len(labelled))),
        "random_state": args.random_state,
    }
    alone = MNISTCNNClassifier(architecture="small", **few_label_params)
    # Given unfitted, the teacher is fitted by the student on the labelled images.
    teacher = MNISTCNNClassifier(label_smoothing=0.0, **few_label_params)
    distilled = DistilledCNNClassifier(teacher, max_epochs=args.epochs, random_state=args.random_state)

    print(f"{'model':<22} {'fit time':>9} {'test accuracy':>14}")
    start = time.perf_counter()
    alone.fit(X[labelled], y[labelled])
    accuracies = {"student, labels only": alone.score(X_test, y_test)}
    print(
        f"{'student, labels only':<22} {time.perf_counter() - start:>8.0f}s {accuracies['student, labels only']:>14.2%}"
    )
    start = time.perf_counter()
    distilled.fit(X, y_partial)  # every image; -1 marks the unlabelled ones
    accuracies["teacher"] = distilled.teacher_.score(X_test, y_test)
    accuracies["student, distilled"] = distilled.score(X_test, y_test)
    seconds = time.perf_counter() - start
    print(f"{'teacher':<22} {'':>9} {accuracies['teacher']:>14.2%}")
    print(f"{'student, distilled':<22} {seconds:>8.0f}s {accuracies['student, distilled']:>14.2%}")

    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    ax.barh(list(accuracies), [100 * accuracy for accuracy in accuracies.values()])
    ax.set_xlabel("test accuracy (%)")
    ax.set_xlim(min(100 * a for a in accuracies.values()) - 5, 100)
    ax.set_title(f"{len(labelled)} labels and {np.sum(y_partial == -1):,} unlabelled digits")
    fig.savefig(args.plot, dpi=100)
    print(f"figure saved to {args.plot}")


if __name__ == "__main__":
    main()
