"""
Monitoring: watch a CNN serve clean, rotated and noisy digits, and print each report
====================================================================================

Trains a CNN on 5,000 training images for 2 epochs, records its accuracy and
its predictions on 2,000 held-out test images as the monitor's baseline, then
streams 2,000 other test images through the monitor in requests of 100:
as they are, rotated by 45 to 90 degrees, and under heavy Gaussian noise.
The clean stream raises no alert; the drifted ones do, with labels and without.
A figure draws the labelled streams' indicators as they are served, with the alerts.
Runs in under a minute on two CPU cores.

Run ``python examples/monitoring.py --help`` for the options.
"""

import argparse
import logging

import matplotlib.pyplot as plt

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist.monitoring import PerformanceMonitor, make_drifted


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-size", type=int, default=5000, help="training images to use (default 5000)")
    parser.add_argument("--epochs", type=int, default=2, help="most training epochs (default 2)")
    parser.add_argument("--random-state", type=int, default=0, help="seed (default 0)")
    parser.add_argument(
        "--plot", default="monitoring.png", help="where to save the timeline (default monitoring.png)"
    )
    args = parser.parse_args(argv)
    # Alerts are logged by the "sk_mnist.monitoring" logger; show them as they fire.
    logging.basicConfig(format="  %(levelname)s %(name)s: %(message)s")

    X_train, y_train = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    clf = MNISTCNNClassifier(max_epochs=args.epochs, random_state=args.random_state)
    clf.fit(X_train[: args.train_size], y_train[: args.train_size])

    X_ref, y_ref = X_test[:2000], y_test[:2000]
    monitor = PerformanceMonitor(clf, baseline_accuracy=clf.score(X_ref, y_ref)).fit(X_ref)
    print(
        f"baseline: accuracy {monitor.baseline_accuracy:.4f}, "
        f"mean confidence {monitor.reference_confidence_:.4f} on {len(X_ref)} held-out images"
    )

    X, y = X_test[2000:4000], y_test[2000:4000]
    streams = {
        "clean": X,
        "rotated": make_drifted(X, "rotated", random_state=args.random_state),
        "noisy": make_drifted(X, "noisy", random_state=args.random_state),
    }
    # The labelled streams' indicators after every request, for the timeline.
    timelines = {}
    for name, X_stream in streams.items():
        for labelled in (True, False):
            print(f"\n{name} digits, {'with' if labelled else 'without'} labels:")
            monitor.reset()
            reports = []
            for start in range(0, len(X_stream), 100):
                batch = X_stream[start : start + 100]
                if labelled:
                    monitor.observe(batch, y[start : start + 100])
                else:
                    monitor.predict(batch)
                reports.append(monitor.report())
            if labelled:
                timelines[name] = (reports, list(monitor.alerts))
            for key, value in monitor.report().items():
                print(f"  {key:18} {value:.4g}" if isinstance(value, float) else f"  {key:18} {value}")
    plot_timelines(timelines, monitor, args.plot)
    print(f"\ntimeline saved to {args.plot}")


def plot_timelines(timelines, monitor, path):
    """Accuracy, confidence and class shift as each stream is served, with the alerts raised."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    panels = [
        ("accuracy", "rolling accuracy", monitor.baseline_accuracy - monitor.drop_threshold),
        ("mean_confidence", "mean confidence", monitor.reference_confidence_ - monitor.confidence_drop),
        ("class_shift", "class shift (total variation)", monitor.class_shift),
    ]
    for ax, (key, label, threshold) in zip(axes, panels):
        for name, (reports, alerts) in timelines.items():
            served = [report["n_samples"] for report in reports]
            (line,) = ax.plot(served, [report[key] for report in reports], label=name)
            for alert in alerts:
                ax.axvline(alert.n_samples, color=line.get_color(), linestyle=":", alpha=0.6)
        ax.axhline(threshold, color="firebrick", linestyle="--", linewidth=1, label="alert threshold")
        ax.set_xlabel("samples served")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("A monitor in front of the CNN: labelled streams, alerts dotted")
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
