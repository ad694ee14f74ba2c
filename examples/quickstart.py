"""
Quickstart: train the CNN on part of the bundled MNIST, score it and draw its errors
====================================================================================

Trains on 10,000 of the 60,000 training images for 5 epochs (under a minute on
two CPU cores), reports accuracy on the full 10,000-image test set, and saves
one figure of the report's displays: the training loss per epoch, the errors
by pair of classes, and the first test digits the network gets wrong.

Run ``python examples/quickstart.py --help`` for the options.
"""

import argparse
import time

import matplotlib.pyplot as plt

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist.report import ErrorMatrixDisplay, MisclassifiedDisplay, TrainingCurvesDisplay


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--train-size", type=int, default=10_000, help="training images to use (default 10000)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="most training epochs (default 5)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--plot", default="quickstart.png", help="where to save the figure (default quickstart.png)"
    )
    args = parser.parse_args(argv)

    X_train, y_train = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)

    clf = MNISTCNNClassifier(max_epochs=args.epochs, random_state=args.random_state, verbose=1)
    start = time.perf_counter()
    clf.fit(X_train[: args.train_size], y_train[: args.train_size])
    seconds = time.perf_counter() - start

    accuracy = clf.score(X_test, y_test)
    print(f"trained on {args.train_size} images in {seconds:.1f} s ({clf.n_iter_} epochs)")
    print(f"test accuracy: {accuracy:.4f} ({round((1 - accuracy) * len(y_test))} errors in {len(y_test)})")

    # The report's figures, as displays drawn on axes of one figure.
    fig = plt.figure(figsize=(14, 9), layout="constrained")
    axes = fig.subplot_mosaic([["curves", "errors"], ["digits", "digits"]], height_ratios=[1, 1])
    TrainingCurvesDisplay.from_estimator(clf, name="cnn", ax=axes["curves"])
    ErrorMatrixDisplay.from_estimator(clf, X_test, y_test, name="cnn", ax=axes["errors"])
    MisclassifiedDisplay.from_estimator(clf, X_test, y_test, limit=30, name="cnn", ax=axes["digits"])
    fig.savefig(args.plot, dpi=100)
    print(f"figure saved to {args.plot}")


if __name__ == "__main__":
    main()
