"""The default recipe's errors: accuracy, error count and the (true, predicted) pairs it confuses most.

Usage: python benchmarks/bench_error_analysis.py [--random-state 0] [--top 10]

Fits ``MNISTCNNClassifier(random_state=...)`` on the 60,000 training images and
scores the 10,000 test images; the figures of docs/model_card.md.
"""

import argparse
import time

import numpy as np

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist.report import ConfusedPairsDisplay, proportion_interval


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--top", type=int, default=10, help="confused pairs listed")
    args = parser.parse_args()

    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    start = time.perf_counter()
    clf = MNISTCNNClassifier(random_state=args.random_state).fit(X, y)
    seconds = time.perf_counter() - start
    predicted = clf.predict(X_test)
    correct = int(np.sum(predicted == y_test))
    low, high = proportion_interval(correct, len(y_test))
    print(
        f"fit {seconds:.0f} s; accuracy {correct / len(y_test):.2%} (95% Wilson {low:.2%}-{high:.2%}), "
        f"{len(y_test) - correct} errors"
    )
    pairs = ConfusedPairsDisplay._of(y_test, {"cnn": predicted}, labels=None, top=args.top)
    print("true -> predicted: errors")
    for (true, wrong), count in zip(pairs.pairs, pairs.counts[:, 0]):
        print(f"{true} -> {wrong}: {count}")


if __name__ == "__main__":
    main()
