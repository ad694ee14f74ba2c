"""Time scikit-learn's full check_estimator on every exported estimator.

Usage: SCIPY_ARRAY_API=1 python benchmarks/bench_check_estimator.py

SCIPY_ARRAY_API=1 makes the array API check run instead of skipping. The
estimators and the checks expected to fail (with their reasons) are those of
tests/test_estimator_checks.py.
"""

import sys
import time
from pathlib import Path

from sklearn.utils.estimator_checks import check_estimator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_estimator_checks import expected_failed_checks, instance, public_estimators  # noqa: E402


def main():
    for cls in public_estimators():
        estimator = instance(cls)
        start = time.perf_counter()
        results = check_estimator(
            estimator, on_fail=None, expected_failed_checks=expected_failed_checks(estimator)
        )
        seconds = time.perf_counter() - start
        statuses = [result["status"] for result in results]
        xfailed = [result["check_name"] for result in results if result["status"] == "xfail"]
        print(
            f"{type(estimator).__name__}: {len(results)} checks, {statuses.count('passed')} passed, "
            f"{statuses.count('failed')} failed, {statuses.count('skipped')} skipped, "
            f"{len(xfailed)} expected failures {xfailed}, {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
