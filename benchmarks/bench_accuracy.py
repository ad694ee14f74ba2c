"""Accuracy of the recipe on the full MNIST protocol: single models and their soft vote.

Usage:
    python benchmarks/bench_accuracy.py --config default --seeds 0 1 2 3 4
    python benchmarks/bench_accuracy.py --config deep --seeds 0 1 2 3 4
    python benchmarks/bench_accuracy.py --config frontier --seeds 0 1 2 3 4 --json

Fits one model per seed on the 60,000 training images, scores each on the
10,000 test images, then scores the soft and the hard vote of all of them (the
5-model ensembles of ``make_cnn_ensemble``, whose members differ only in seed). Prints a
markdown table: per seed, epochs run, fit time and test accuracy; then the
mean, the range and the ensemble. ``--param name=value`` overrides a
parameter (values are read as Python literals, or name one of torch's
optimizers), e.g. ``--param max_epochs=20`` or ``--param optimizer=torch.optim.AdamW``.
``--save-dir DIR`` keeps each fitted model there (``sk_mnist.save``'s format,
``<config>-seed<N>.skm``), e.g. to reuse the models as distillation teachers;
a model already there is loaded instead of fitted (its row says "loaded" and
the epochs it ran), so that an ensemble can grow seed by seed across runs
(one directory per set of ``--param``: the file name records only the config).
``--holdout N`` fits on the first 60,000 - N training images and scores the
last N instead of the test set: the split on which to choose between recipes
without looking at the test images.
``--json`` ends the output with one JSON line: ``{"config", "holdout", "params", "seeds",
"accuracies", "fit_seconds", "mean", "sd", "min", "max", "soft_vote",
"hard_vote"}`` (accuracies as fractions; a loaded model's fit time is null, and the
votes are null for one seed).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _params import CONFIGS, add_param_option

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
    print(f"config {args.config} {params}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fitted on {len(X):,} training images, scored on {scored}")
    print()
    print(f"| seed | epochs | fit time | {'holdout' if args.holdout else 'test'} accuracy |")
    print("|---|---|---|---|")
    accuracies, probabilities, fit_seconds = [], [], []
    for seed in args.seeds:
        held = f"-holdout{args.holdout}" if args.holdout else ""
        path = None if args.save_dir is None else args.save_dir / f"{args.config}{held}-seed{seed}.skm"
        seconds = None
        if path is not None and path.exists():
            clf, fit_time = sk_mnist.load(path), "loaded"
        else:
            start = time.perf_counter()
            clf = MNISTCNNClassifier(**params, random_state=seed).fit(X, y)
            seconds = time.perf_counter() - start
            fit_time = f"{seconds:.0f} s"
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                sk_mnist.save(clf, path)
        proba = clf.predict_proba(X_test)
        accuracy = float(np.mean(clf.classes_[proba.argmax(1)] == y_test))
        accuracies.append(accuracy)
        probabilities.append(proba)
        fit_seconds.append(seconds)
        print(f"| {seed} | {clf.n_iter_} | {fit_time} | {accuracy:.2%} |", flush=True)
    print()
    print(
        f"single models: mean {np.mean(accuracies):.2%}, range {min(accuracies):.2%}-{max(accuracies):.2%}"
        f" over {len(accuracies)} seeds"
    )
    votes = {"soft_vote": None, "hard_vote": None}
    if len(probabilities) > 1:
        soft = clf.classes_[np.mean(probabilities, axis=0).argmax(1)]
        votes["soft_vote"] = float(np.mean(soft == y_test))
        print(f"soft vote of the {len(probabilities)} models: {votes['soft_vote']:.2%}")
        # Majority of the predicted classes, ties to the lowest, as VotingClassifier(voting="hard").
        counts = sum(np.eye(len(clf.classes_), dtype=int)[p.argmax(1)] for p in probabilities)
        hard = clf.classes_[counts.argmax(1)]
        votes["hard_vote"] = float(np.mean(hard == y_test))
        print(f"hard vote of the {len(probabilities)} models: {votes['hard_vote']:.2%}")
    if args.json:
        figures = {
            "config": args.config,
            "holdout": args.holdout,
            "params": {name: getattr(value, "__name__", value) for name, value in params.items()},
            "seeds": args.seeds,
            "accuracies": accuracies,
            "fit_seconds": fit_seconds,
            "mean": float(np.mean(accuracies)),
            "sd": float(np.std(accuracies, ddof=1)) if len(accuracies) > 1 else None,
            "min": min(accuracies),
            "max": max(accuracies),
            **votes,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
