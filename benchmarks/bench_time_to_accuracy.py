"""Time to accuracy: fit wall time, in seconds and in machine-independent units, against test accuracy.

Usage:
    python benchmarks/bench_time_to_accuracy.py --config default --seeds 0 1 2 3 4
    python benchmarks/bench_time_to_accuracy.py --config fast --seeds 0 1 2 3 4 --json
    python benchmarks/bench_time_to_accuracy.py --config default --holdout --seeds 0

Fits the configuration once per seed on the 60,000 training images and scores
it on the 10,000 test images. ``--holdout`` fits on the first 50,000 training
images and scores on the last 10,000 instead: recipes are chosen that way, so
that no choice looks at the test set.

The unit of time is one epoch of the plain LeNet loop: the classic LeNet
(:class:`sk_mnist.modules.LeNet` without batch norm), FP32, default memory
layout, Adam at 1e-3, cross-entropy, batches of 128 drawn by ``randperm`` from
the training images already in memory as float tensors. It is timed in the
same run, before and after the fits (the smaller counts), so that a fit's
duration in units compares across machines and across noisy runs.

A fit's time is everything ``fit`` does (validation, pixel statistics,
augmentation, early stopping if on). For information only, a callback scores
the test images after every epoch, with its own time taken out of the fit's,
and the table gives the first epoch at which test accuracy reached 99.0, 99.5
and 99.6%; the weights in the end are the fit's, whatever those epochs were.
``--param name=value`` overrides a parameter (Python literals, or one of
torch's optimizers); ``--json`` ends with one line of JSON holding the figures,
for ``plot_time_to_accuracy.py``; ``--label`` names the run there. To time an
earlier version of the package, run this script with that version first on
``PYTHONPATH`` (its ``default`` config is then that version's defaults).
"""

import argparse
import copy
import json
import math
import statistics
import time

import numpy as np
import torch
from _params import CONFIGS, add_param_option
from bench_fit_overhead import plain_epoch
from skorch.callbacks import Callback

from sk_mnist import MNISTCNNClassifier, load_mnist

THRESHOLDS = (0.990, 0.995, 0.996)


def unit_seconds(X, y):
    """Wall time of one epoch of the plain LeNet loop over ``X`` (bench_fit_overhead's side B)."""
    return plain_epoch(X, y)[0]


class TestAccuracyByEpoch(Callback):
    """Score held-out images after every epoch, keeping count of the time it takes."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def initialize(self):
        self.accuracies_, self.seconds_ = [], 0.0
        return self

    def on_epoch_end(self, net, **kwargs):
        start = time.perf_counter()
        # predict_proba switches the network to evaluation and skorch back to
        # training at the next batch; nothing random is drawn.
        self.accuracies_.append(float(np.mean(net.predict(self.X) == self.y)))
        self.seconds_ += time.perf_counter() - start


def multiply_adds(network, image_shape):
    """Multiply-adds of one image's forward pass through the convolutions and linear layers."""
    counts = []

    def count(layer, inputs, output):
        if isinstance(layer, torch.nn.Conv2d):
            counts.append(output[0].numel() * layer.in_channels // layer.groups * math.prod(layer.kernel_size))
        elif isinstance(layer, torch.nn.Linear):
            counts.append(layer.in_features * layer.out_features)

    # A copy in training mode: in evaluation the convolutions run folded, past their hooks.
    hook = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        with torch.no_grad():
            copy.deepcopy(network).train()(torch.zeros(2, *image_shape))
    finally:
        hook.remove()
    return sum(counts)


def first_epoch_reaching(accuracies, threshold):
    return next((epoch for epoch, acc in enumerate(accuracies, 1) if acc >= threshold), None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--holdout", action="store_true", help="fit on 50,000 training images, score the other 10,000"
    )
    parser.add_argument("--json", action="store_true", help="end with the figures as one line of JSON")
    parser.add_argument("--label", help="the run's name in the output (default: the config's)")
    add_param_option(parser, "a parameter of every fit")
    args = parser.parse_args()
    params = {**CONFIGS[args.config], **dict(args.param)}
    label = args.label or args.config

    X, y = load_mnist("train", return_X_y=True)
    if args.holdout:
        X, y, X_eval, y_eval = X[:50000], y[:50000], X[50000:], y[50000:]
    else:
        X_eval, y_eval = load_mnist("test", return_X_y=True)
    scored_on = "the last 10,000 training images" if args.holdout else "the test images"
    print(f"{label}: config {args.config} {params}; scored on {scored_on}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    units = [unit_seconds(X, y)]
    print(f"unit (one epoch of the plain LeNet loop over {len(X):,} images): {units[0]:.1f} s", flush=True)
    fit_seconds, accuracies, rows = [], [], []
    for seed in args.seeds:
        monitor = TestAccuracyByEpoch(X_eval, y_eval)
        clf = MNISTCNNClassifier(**params, random_state=seed, callbacks=[("test_accuracy", monitor)])
        start = time.perf_counter()
        clf.fit(X, y)
        fit_seconds.append(time.perf_counter() - start - monitor.seconds_)
        accuracies.append(float(np.mean(clf.predict(X_eval) == y_eval)))
        rows.append((seed, clf.n_iter_, [first_epoch_reaching(monitor.accuracies_, t) for t in THRESHOLDS]))
        print(f"seed {seed}: {clf.n_iter_} epochs, {fit_seconds[-1]:.1f} s, {accuracies[-1]:.2%}", flush=True)
    units.append(unit_seconds(X, y))
    unit = min(units)
    print(f"unit again: {units[1]:.1f} s; the smaller, {unit:.1f} s, counts")
    print()
    header = " | ".join(f"first epoch >= {t:.1%}" for t in THRESHOLDS)
    print(f"| seed | epochs | fit time | units | accuracy | {header} |")
    print("|---|---|---|---|---|" + "---|" * len(THRESHOLDS))
    for (seed, epochs, firsts), seconds, accuracy in zip(rows, fit_seconds, accuracies):
        reached = " | ".join("-" if e is None else str(e) for e in firsts)
        print(f"| {seed} | {epochs} | {seconds:.1f} s | {seconds / unit:.2f} | {accuracy:.2%} | {reached} |")
    macs = multiply_adds(clf.module_.network, clf.image_shape_)
    n_parameters = sum(p.numel() for p in clf.module_.network.parameters())
    print(f"network: {macs / 1e6:.2f} million multiply-adds per image, {n_parameters:,} parameters")
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print()
    print(
        f"mean {statistics.mean(accuracies):.2%} (sd {spread:.2%}, range {min(accuracies):.2%}-"
        f"{max(accuracies):.2%}) in {statistics.mean(fit_seconds):.1f} s = "
        f"{statistics.mean(fit_seconds) / unit:.2f} units on average over {len(accuracies)} seeds"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "config": label,
                    "params": {name: repr(value) for name, value in params.items()},
                    "holdout": args.holdout,
                    "seeds": args.seeds,
                    "accuracies": accuracies,
                    "fit_seconds": [round(s, 2) for s in fit_seconds],
                    "unit_seconds": round(unit, 2),
                    "units": [round(s / unit, 3) for s in fit_seconds],
                    "multiply_adds": macs,
                }
            )
        )


if __name__ == "__main__":
    main()
