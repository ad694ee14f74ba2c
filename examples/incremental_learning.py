"""
Incremental learning: learn digits 0-7, then teach the model 8 and 9 with partial_fit
=====================================================================================

Fits a CNN on the training images of digits 0-7, then calls ``partial_fit``
a few times on images of 8 and 9 only: the output layer grows to ten classes
and ``classes_`` extends, while a rehearsal buffer of earlier images, mixed
into each call, keeps the model from forgetting the first eight digits.
Prints the accuracy on the old, the new and all test digits after each call,
and draws the old and the new classes' accuracy stage by stage.
By default 10,000 training images: about 30 seconds on two CPU cores. On all
60,000 images, see ``benchmarks/bench_incremental.py`` and docs/benchmarks.md.

Run ``python examples/incremental_learning.py --help`` for the options.
"""

import argparse

import matplotlib.pyplot as plt
import numpy as np

from sk_mnist import MNISTCNNClassifier, load_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train-size", type=int, default=10_000, help="training images to use (default 10000)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="most epochs of the first fit (default 5)")
    parser.add_argument("--calls", type=int, default=3, help="partial_fit calls on 8 and 9 (default 3)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--plot", default="incremental_learning.png", help="where to save the figure")
    args = parser.parse_args(argv)

    X_train, y_train = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    X, y = X_train[: args.train_size], y_train[: args.train_size]
    old, old_test = y < 8, y_test < 8

    stages = {}  # stage: (accuracy on the old classes, on the new ones or NaN)

    def report(stage, clf):
        line = f"{stage:<16} classes {clf.classes_.tolist()}: "
        old_accuracy = clf.score(X_test[old_test], y_test[old_test])
        line += f"old (0-7) {old_accuracy:.2%}, "
        if len(clf.classes_) < 10:
            stages[stage] = (old_accuracy, np.nan)
            print(line + "new (8-9) not learnt yet")
            return
        new_accuracy = clf.score(X_test[~old_test], y_test[~old_test])
        stages[stage] = (old_accuracy, new_accuracy)
        line += f"new (8-9) {new_accuracy:.2%}, "
        print(line + f"all {clf.score(X_test, y_test):.2%}")

    clf = MNISTCNNClassifier(max_epochs=args.epochs, random_state=args.random_state)
    report("fit on 0-7", clf.fit(X[old], y[old]))
    # A smaller learning rate for the updates, so that they adjust the model
    # rather than retrain it.
    clf.set_params(lr=3e-4)
    for call in range(1, args.calls + 1):
        report(f"partial_fit {call}", clf.partial_fit(X[~old], y[~old]))

    # The old classes kept (rehearsal) while the new ones are learnt.
    fig, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
    positions = np.arange(len(stages))
    old_scores, new_scores = np.array(list(stages.values())).T
    ax.bar(positions - 0.2, 100 * old_scores, width=0.4, label="old classes (0-7)")
    ax.bar(positions + 0.2, 100 * new_scores, width=0.4, label="new classes (8, 9)")
    ax.set_xticks(positions, list(stages))
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Learning 8 and 9 with partial_fit, without forgetting 0-7")
    ax.legend(loc="lower right")
    fig.savefig(args.plot, dpi=100)
    print(f"figure saved to {args.plot}")


if __name__ == "__main__":
    main()
