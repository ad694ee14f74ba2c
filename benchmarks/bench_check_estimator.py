"""Time scikit-learn's full check_estimator on every exported estimator.

Usage: SCIPY_ARRAY_API=1 python benchmarks/bench_check_estimator.py

SCIPY_ARRAY_API=1 makes the array API check run instead of skipping.
"""

import time

from sklearn.utils.estimator_checks import check_estimator

from sk_mnist import MNISTCNNClassifier
from sk_mnist.preprocessing import Deskewer, GlobalStandardizer, PixelScaler


def main():
    for estimator in (MNISTCNNClassifier(), PixelScaler(), GlobalStandardizer(), Deskewer()):
        start = time.perf_counter()
        results = check_estimator(estimator, on_fail=None)
        seconds = time.perf_counter() - start
        statuses = [result["status"] for result in results]
        print(
            f"{type(estimator).__name__}: {len(results)} checks, {statuses.count('passed')} passed, "
            f"{statuses.count('failed')} failed, {statuses.count('skipped')} skipped, {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
