"""Accuracy of the recipe on the full MNIST protocol: single models and their soft vote.

Usage:
    python benchmarks/bench_accuracy.py --config default --seeds 0 1 2 3 4
    python benchmarks/bench_accuracy.py --config deep --seeds 0 1 2 3 4
    python benchmarks/bench_accuracy.py --config frontier --seeds 0 1 2 3 4 --json

Fits one model per seed on the 60,000 training images, scores each on the
10,000 test images, then scores the soft and the hard vote of all of them (the
5-model ensembles of ``make_cnn_ensemble``). The members of a config differ in
seed; those of ``frontier-mixed`` also in the kernels of their convolutions:
seed ``s`` takes the member parameters ``MEMBERS[config][s % len(...)]``, so
seeds 0, 1, 2, ... take them in turn, as the members of
``make_cnn_ensemble(member_params=...)`` do. Prints a
markdown table: per seed, epochs run, fit time and test accuracy; then the
mean, the range and the ensemble. ``--param name=value`` overrides a
parameter (values are read as Python literals, or name one of torch's
optimizers), e.g. ``--param max_epochs=20`` or ``--param optimizer=torch.optim.AdamW``.
``--save-dir DIR`` keeps each fitted model there (``sk_mnist.save``'s format,
``<config>-seed<N>.skm``), e.g. to reuse the models as distillation teachers;
a model already there is loaded instead of fitted (its row says "loaded" and
the epochs it ran), so that an ensemble can grow seed by seed across runs. The
file name records only the config and the seed: a saved model fitted with other
parameters than the run's (another ``--param``) stops the run with an error.
``--holdout N`` fits on the first 60,000 - N training images and scores the
last N instead of the test set: the split on which to choose between recipes
without looking at the test images.
A config or ``--param`` with ``test_time_augmentation=True`` (predictions
averaged over fixed views of each image) also scores every model without it,
side by side: the same fitted network, as training does not depend on it.
``--json`` ends the output with one JSON line: ``{"config", "holdout", "params", "member_params", "seeds",
"fit_seconds", "accuracies", "mean", "sd", "min", "max", "soft_vote",
"hard_vote", "predict_seconds"}`` (accuracies as fractions; a loaded model's fit time is
null, and the votes are null for one seed); with test-time augmentation, a key
``"without_tta"`` holds the same figures (``accuracies`` to ``predict_seconds``) for
the predictions without it.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _params import CONFIGS, MEMBERS, add_param_option

import sk_mnist
from sk_mnist import MNISTCNNClassifier, load_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_param_option(parser, "a parameter of every fit")
    parser.add_argument("--save-dir", type=Path, default=None, help="keep the fitted models here")
    parser.add_argument(
        "--holdout", type=int, default=0, help="score the last N training images instead of the test set"
    )
    parser.add_argument("--json", action="store_true", help="end with the figures as one JSON line")
    args = parser.parse_args()
    params = {**CONFIGS[args.config], **dict(args.param)}

    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    if args.holdout:
        X, y, X_test, y_test = X[: -args.holdout], y[: -args.holdout], X[-args.holdout :], y[-args.holdout :]
    scored = f"the last {args.holdout:,} training images" if args.holdout else "the test set"
    members = MEMBERS.get(args.config, [{}])
    print(f"config {args.config} {params}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    if len(members) > 1:
        print(f"members (seed s takes entry s % {len(members)}): {members}")
    print(f"fitted on {len(X):,} training images, scored on {scored}")
    print()
    averaging = bool(params.get("test_time_augmentation", False))
    modes = {"with TTA": True, "without TTA": False} if averaging else {"": False}
    what = "holdout" if args.holdout else "test"
    print(f"| seed | epochs | fit time | {' | '.join(f'{what} accuracy {mode}'.strip() for mode in modes)} |")
    print("|---|---|---|" + "---|" * len(modes))
    probabilities = {mode: [] for mode in modes}
    predict_seconds = {mode: [] for mode in modes}
    fit_seconds = []
    held = f"-holdout{args.holdout}" if args.holdout else ""
    runs = [
        (
            MNISTCNNClassifier(**{**params, **members[seed % len(members)]}, random_state=seed),
            None if args.save_dir is None else args.save_dir / f"{args.config}{held}-seed{seed}.skm",
        )
        for seed in args.seeds
    ]
    # Every saved model is checked before the first fit, which may take minutes.
    saved = {path: loaded(path, clf, parser) for clf, path in runs if path is not None and path.exists()}
    for seed, (clf, path) in zip(args.seeds, runs, strict=True):
        seconds = None
        if path in saved:
            clf, fit_time = saved[path], "loaded"
        else:
            start = time.perf_counter()
            clf.fit(X, y)
            seconds = time.perf_counter() - start
            fit_time = f"{seconds:.0f} s"
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                sk_mnist.save(clf, path)
        fit_seconds.append(seconds)
        for mode, averaged in modes.items():
            start = time.perf_counter()
            probabilities[mode].append(clf.set_params(test_time_augmentation=averaged).predict_proba(X_test))
            predict_seconds[mode].append(time.perf_counter() - start)
        cells = " | ".join(f"{accuracy(clf.classes_, p[-1], y_test):.2%}" for p in probabilities.values())
        print(f"| {seed} | {clf.n_iter_} | {fit_time} | {cells} |", flush=True)
    results = {
        mode: {**summary(clf.classes_, probas, y_test), "predict_seconds": predict_seconds[mode]}
        for mode, probas in probabilities.items()
    }
    print()
    for mode, figures in results.items():
        label = f"{mode}, " if mode else ""
        mean, low, high = figures["mean"], figures["min"], figures["max"]
        print(
            f"{label}single models: mean {mean:.2%}, range {low:.2%}-{high:.2%} over {len(args.seeds)} seeds"
        )
        print(
            f"{label}predict_proba on {len(X_test):,} images: {np.mean(figures['predict_seconds']):.1f} s a model"
        )
        for vote in ("soft", "hard"):
            if figures[f"{vote}_vote"] is not None:
                print(f"{label}{vote} vote of the {len(args.seeds)} models: {figures[f'{vote}_vote']:.2%}")
    if args.json:
        primary, *other = results.values()
        output = {
            "config": args.config,
            "holdout": args.holdout,
            "params": {name: getattr(value, "__name__", value) for name, value in params.items()},
            "member_params": members,
            "seeds": args.seeds,
            "fit_seconds": fit_seconds,
            **primary,
        }
        if other:
            output["without_tta"] = other[0]
        print(json.dumps(output))


def loaded(path, expected, parser):
    """The model saved at ``path``, refused unless it was fitted with ``expected``'s parameters."""
    clf = sk_mnist.load(path)
    # Predictions do not depend on how the saved model predicted, only on how it was trained.
    ignored = {"test_time_augmentation"}
    saved, wanted = clf.get_params(deep=False), expected.get_params(deep=False)
    differing = sorted(
        name for name in (saved.keys() | wanted.keys()) - ignored if saved.get(name) != wanted.get(name)
    )
    if differing:
        parser.error(
            f"{path} was fitted with other {', '.join(differing)} than this run's; use another --save-dir"
        )
    return clf


def accuracy(classes, proba, y_true):
    """Share of the rows whose most probable class is the true label."""
    return float(np.mean(classes[proba.argmax(1)] == y_true))


def summary(classes, probabilities, y_true):
    """Accuracies of each model, their mean, sd and range, and of the soft and hard votes of all."""
    accuracies = [accuracy(classes, proba, y_true) for proba in probabilities]
    figures = {
        "accuracies": accuracies,
        "mean": float(np.mean(accuracies)),
        "sd": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else None,
        "min": min(accuracies),
        "max": max(accuracies),
        "soft_vote": None,
        "hard_vote": None,
    }
    if len(probabilities) > 1:
        figures["soft_vote"] = accuracy(classes, np.mean(probabilities, axis=0), y_true)
        # Majority of the predicted classes, ties to the lowest, as VotingClassifier(voting="hard").
        counts = sum(np.eye(len(classes), dtype=int)[p.argmax(1)] for p in probabilities)
        figures["hard_vote"] = accuracy(classes, counts, y_true)
    return figures


if __name__ == "__main__":
    main()
