"""
Distillation: teach a small CNN with a larger one, and compare it with the same CNN on labels alone
===================================================================================================

Trains a teacher (the "deep" network, as ``DistilledCNNClassifier`` fits by
default) on part of the bundled training images, then the "small" student
network twice with the same recipe and budget: distilled from the teacher
(``DistilledCNNClassifier``) and on the labels alone
(``MNISTCNNClassifier(architecture="small")``). Prints each model's parameter
count and accuracy on the full 10,000-image test set, and draws accuracy
against size. By default 10,000
training images and 5 epochs per model: about 40 seconds on two CPU cores.
Do not expect the teacher to win by much: on MNIST the small network by
itself learns nearly as much as its teacher knows (on all 60,000 images with
the full recipe and a fixed budget, 99.46% distilled against 99.44% alone
over ten seeds; see ``benchmarks/bench_distill.py`` and docs/benchmarks.md).

Run ``python examples/distillation.py --help`` for the options.
"""

import argparse
import time

import matplotlib.pyplot as plt

from sk_mnist import DistilledCNNClassifier, MNISTCNNClassifier, load_mnist
from sk_mnist.distill import TEACHER_PARAMS


def n_parameters(clf):
    return sum(p.numel() for p in clf.module_.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train-size", type=int, default=10_000, help="training images to use (default 10000)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="most training epochs per model (default 5)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--plot", default="distillation.png", help="where to save the figure")
    args = parser.parse_args(argv)

    X_train, y_train = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    X, y = X_train[: args.train_size], y_train[: args.train_size]
    common = {"max_epochs": args.epochs, "random_state": args.random_state}

    # The teacher DistilledCNNClassifier would fit itself (no label smoothing:
    # a teacher trained on smoothed labels gives less informative soft labels).
    models = {"teacher (deep)": MNISTCNNClassifier(**TEACHER_PARAMS, **common)}
    models["student, distilled"] = DistilledCNNClassifier(models["teacher (deep)"], **common)
    # The student's network and recipe, without the teacher.
    models["student, labels only"] = MNISTCNNClassifier(architecture="small", **common)
    print(f"{'model':<22} {'parameters':>10} {'fit time':>9} {'test accuracy':>14}")
    sizes, accuracies = [], []
    for name, clf in models.items():
        start = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - start
        sizes.append(n_parameters(clf))
        accuracies.append(clf.score(X_test, y_test))
        print(f"{name:<22} {sizes[-1]:>10,} {seconds:>8.0f}s {accuracies[-1]:>14.2%}")

    # Accuracy against size: the student is a fraction of the teacher.
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.scatter(sizes, [100 * accuracy for accuracy in accuracies])
    for name, size, accuracy in zip(models, sizes, accuracies):
        ax.annotate(name, (size, 100 * accuracy), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("A distilled student, its teacher, and the student on labels alone")
    ax.margins(x=0.3, y=0.15)
    fig.savefig(args.plot, dpi=100)
    print(f"figure saved to {args.plot}")


if __name__ == "__main__":
    main()
