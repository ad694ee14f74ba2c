"""Monitor alerts on clean vs drifted data, and the monitor's overhead per call.

Usage: python benchmarks/bench_monitoring.py [--epochs 15] [--train-size 55000]

1. Trains ``MNISTCNNClassifier(random_state=0)`` on the training images but the
   last ``--reference-size`` (5,000), which are held out as the monitor's
   reference: its baseline accuracy and its label-free baseline (``fit``).
2. Streams the 10,000 test images through a ``PerformanceMonitor`` with its
   default thresholds, in requests of ``--batch-size`` (100) with labels
   (``observe``): as they are, rotated by 45 to 90 degrees either way, and
   under Gaussian noise of half the pixel range. Prints a markdown table of the
   alerts raised (with the sample count at which each fired), the final
   rolling figures and the latencies. The confidence and class-distribution
   alerts use no labels: an unlabelled stream raises them at the same samples.
3. Measures the monitor's own work per call: the time ``monitor.predict``
   and ``monitor.observe`` add to a model that costs nothing (it returns the
   CNN's probabilities, computed beforehand, for the rows it is given), with
   every check active and every window full; median of paired differences,
   set against the median latency of the bare ``clf.predict``. Measured this
   way, the figure does not drown in the noise of the CNN's own latency.
"""

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist.monitoring import PerformanceMonitor, make_drifted


def run_stream(monitor, X, y, batch_size):
    monitor.reset()
    y_pred = np.concatenate(
        [
            monitor.observe(X[start : start + batch_size], y[start : start + batch_size])
            for start in range(0, len(X), batch_size)
        ]
    )
    return monitor.report(), (y_pred == y).mean()


def timed(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


class Replay(ClassifierMixin, BaseEstimator):
    """A model that costs next to nothing: it looks up probabilities computed beforehand.

    Its input is row numbers into ``proba_``.
    """

    def fit(self, proba, classes):
        self.proba_ = proba
        self.classes_ = classes
        return self

    def predict_proba(self, rows):
        return self.proba_[rows]

    def predict(self, rows):
        return self.classes_[self.proba_[rows].argmax(axis=1)]


def monitor_overhead(replay, monitor, y, batch_size, repeats):
    """Median seconds that monitor.predict and monitor.observe add to the bare replay.predict."""
    requests = [
        np.arange(start, start + batch_size) for start in range(0, len(y) - batch_size + 1, batch_size)
    ]
    # Fill every window first, so that each call's checks run over full windows.
    for i in range(monitor.window):
        rows = requests[i % len(requests)]
        monitor.observe(rows, y[rows])
    extra_predict, extra_observe = [], []
    for i in range(repeats):
        rows = requests[i % len(requests)]
        bare = timed(replay.predict, rows)
        extra_predict.append(timed(monitor.predict, rows) - bare)
        extra_observe.append(timed(monitor.observe, rows, y[rows]) - bare)
    return statistics.median(extra_predict), statistics.median(extra_observe)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--epochs", type=int, default=15, help="most training epochs (default 15, the recipe's)"
    )
    parser.add_argument(
        "--train-size", type=int, default=None, help="training images (default: all but the reference)"
    )
    parser.add_argument(
        "--reference-size", type=int, default=5000, help="held-out reference images (default 5000)"
    )
    parser.add_argument("--batch-size", type=int, default=100, help="images per request (default 100)")
    parser.add_argument(
        "--repeats", type=int, default=300, help="timed calls per overhead figure (default 300)"
    )
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    X_ref, y_ref = X[-args.reference_size :], y[-args.reference_size :]
    n_train = len(X) - args.reference_size if args.train_size is None else args.train_size
    if n_train > len(X) - args.reference_size:
        parser.error(
            "--train-size and --reference-size overlap: together they exceed the 60,000 training images"
        )
    start = time.perf_counter()
    clf = MNISTCNNClassifier(max_epochs=args.epochs, random_state=args.random_state).fit(
        X[:n_train], y[:n_train]
    )
    print(f"trained on {n_train} images in {time.perf_counter() - start:.0f} s ({clf.n_iter_} epochs)")

    monitor = PerformanceMonitor(clf, clf.score(X_ref, y_ref)).fit(X_ref)
    print(
        f"reference: {len(X_ref)} held-out training images, "
        f"baseline accuracy {monitor.baseline_accuracy:.4f}, "
        f"mean confidence {monitor.reference_confidence_:.4f}; "
        f"window {monitor.window}, requests of {args.batch_size}\n"
    )

    streams = {
        "clean": X_test,
        "rotated 45-90 degrees": make_drifted(X_test, "rotated", random_state=args.random_state),
        "Gaussian noise, sigma 127.5": make_drifted(X_test, "noisy", random_state=args.random_state),
    }
    print(
        "| test stream (10,000 images) | alerts raised (kind at sample) | stream accuracy | rolling accuracy "
        "| mean confidence | class shift (TV) | p50 latency | p95 latency |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, X_stream in streams.items():
        report, accuracy = run_stream(monitor, X_stream, y_test, args.batch_size)
        alerts = ", ".join(f"{alert.kind} at {alert.n_samples}" for alert in monitor.alerts) or "none"
        print(
            f"| {name} | {len(monitor.alerts)}: {alerts} | {accuracy:.2%} | {report['accuracy']:.2%} "
            f"| {report['mean_confidence']:.4f} | {report['class_shift']:.3f} "
            f"| {report['latency_p50_ms']:.1f} ms | {report['latency_p95_ms']:.1f} ms |"
        )

    # Every check active: a reference, labels, and a latency SLO that is never broken.
    replay = Replay().fit(clf.predict_proba(X_test), clf.classes_)
    timing = PerformanceMonitor(replay, monitor.baseline_accuracy, latency_slo_ms=1e6).fit(
        np.arange(len(X_test))
    )
    print(
        "\n| request size | bare `clf.predict` (median) | monitor's own work per `predict` "
        "| per `observe` | share of the bare call |"
    )
    print("|---|---|---|---|---|")
    for batch_size in (1, args.batch_size):
        starts = [(i * batch_size) % (len(X_test) - batch_size + 1) for i in range(args.repeats)]
        bare = statistics.median(timed(clf.predict, X_test[start : start + batch_size]) for start in starts)
        extra_predict, extra_observe = monitor_overhead(replay, timing, y_test, batch_size, args.repeats)
        print(
            f"| {batch_size} | {bare * 1e3:.2f} ms | {extra_predict * 1e6:.0f} us "
            f"| {extra_observe * 1e6:.0f} us | {extra_predict / bare:.1%} / {extra_observe / bare:.1%} |"
        )
    report_time = statistics.median(timed(timing.report) for _ in range(args.repeats))
    print(f"\n`report()` with full windows: {report_time * 1e6:.0f} us")


if __name__ == "__main__":
    main()
