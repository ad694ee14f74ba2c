"""Core figures: data loading times, one full-size epoch, and the quick fit.

Usage: python benchmarks/bench_core.py [--repeats 5]

1. ``load_mnist("all")`` on an empty cache (decompress, verify checksums, cache);
2. ``load_mnist("all")`` from the cache, each in a new Python process (median);
3. one epoch of the default recipe on the full 60,000 training images;
4. the quick fit: 5 epochs on the first 10,000 training images, scored on the
   10,000 test images.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from sk_mnist import MNISTCNNClassifier, load_mnist

LOAD_IN_NEW_PROCESS = (
    "import sys, time; from sk_mnist import load_mnist; t = time.perf_counter(); "
    "load_mnist('all', data_home=sys.argv[1]); print(time.perf_counter() - t)"
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    with tempfile.TemporaryDirectory() as home:
        start = time.perf_counter()
        load_mnist("all", data_home=home)
        cold = time.perf_counter() - start
        warm = [
            float(subprocess.check_output([sys.executable, "-c", LOAD_IN_NEW_PROCESS, home], text=True))
            for _ in range(args.repeats)
        ]
    print(f"load_mnist('all'), empty cache: {cold:.2f} s")
    print(
        f"load_mnist('all'), cached, new process: median {statistics.median(warm):.3f} s over {args.repeats}"
    )

    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    clf = MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X, y)
    epoch = clf.history_[-1, "dur"]
    print(f"one default epoch on 60,000 images (54,000 train + 6,000 validation): {epoch:.1f} s")

    start = time.perf_counter()
    clf = MNISTCNNClassifier(max_epochs=5, random_state=0).fit(X[:10000], y[:10000])
    seconds = time.perf_counter() - start
    accuracy = clf.score(X_test, y_test)
    print(
        f"quick fit (10,000 images, 5 epochs, random_state=0): {seconds:.1f} s, test accuracy {accuracy:.4f}"
    )


if __name__ == "__main__":
    main()
