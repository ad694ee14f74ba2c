"""Fit and score baselines on a given number of training images.

Usage: python benchmarks/bench_baselines.py rbf_svm rbf_svm_pca --train-size 10000 [--test-size 10000]
       [--param NAME=VALUE ...]

Fits each named baseline (``+deskew`` for the deskewed variant) on the first
``--train-size`` training images and prints its test accuracy, fit time and
predict time, wall clock and CPU (all threads of the process): the figures
from which the default run's train sizes and the baselines' documented
accuracies were chosen. On a shared machine the CPU times are the steadier
figure; wall time on an idle machine lies between CPU time / cores and CPU time.
"""

import argparse
import time

import torch
from _params import add_param_option

from sk_mnist import load_mnist
from sk_mnist.baselines import make_baseline


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=0)
    add_param_option(parser, "a parameter of every baseline")
    args = parser.parse_args()
    params = dict(args.param)
    print(
        f"torch threads {torch.get_num_threads()}; train {args.train_size}, test {args.test_size}; {params}"
    )

    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    X, y = X[: args.train_size], y[: args.train_size]
    X_test, y_test = X_test[: args.test_size], y_test[: args.test_size]
    for name in args.names:
        base, deskew = name.removesuffix("+deskew"), name.endswith("+deskew")
        model = make_baseline(
            base, deskew=deskew, random_state=args.random_state, n_jobs=args.n_jobs, **params
        )
        start, cpu = time.perf_counter(), time.process_time()
        model.fit(X, y)
        fit, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()
        accuracy = (model.predict(X_test) == y_test).mean()
        predict, predict_cpu = time.perf_counter() - start, time.process_time() - cpu
        print(
            f"{name:>20}: accuracy {accuracy:.4f}  fit {fit:7.1f} s (CPU {fit_cpu:7.1f} s)  "
            f"predict {predict:6.1f} s (CPU {predict_cpu:6.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
