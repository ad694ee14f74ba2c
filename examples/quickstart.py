"""Quickstart: train the CNN on part of the bundled MNIST and score it.

Trains on 10,000 of the 60,000 training images for 5 epochs (under a minute on
two CPU cores) and reports accuracy on the full 10,000-image test set.

Run ``python examples/quickstart.py --help`` for the options.
"""

import argparse
import time

from sk_mnist import MNISTCNNClassifier, load_mnist


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-size", type=int, default=10_000, help="training images to use (default 10000)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="most training epochs (default 5)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
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


if __name__ == "__main__":
    main()
