"""The example's regularization search: 1 job, 2 jobs, and a local Dask cluster.

Usage: python benchmarks/bench_search.py [--train-size 6000] [--epochs 5]

Times the default search of examples/grid_search_regularization.py (16
candidates, 3 folds, refit of the best) three ways on this machine, one after
the other: serial (n_jobs=1, every fit with torch's default threads), two
joblib worker processes (n_jobs=2, one thread each on 2 cores), and a
distributed.LocalCluster of two one-thread worker processes (startup
included). Prints each wall time, the best candidate and whether the 2-job and
Dask scores are identical.
"""

import argparse
import time

import numpy as np
import torch
from distributed import LocalCluster

from sk_mnist import load_mnist
from sk_mnist.search import fit_search, make_search


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=6_000)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    X, y = load_mnist("train", return_X_y=True)
    X, y = X[: args.train_size], y[: args.train_size]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.train_size:,} images")

    def run(name, n_jobs=None, cluster=False):
        search = make_search(n_jobs=n_jobs, max_epochs=args.epochs, verbose=0)
        start = time.perf_counter()
        if cluster:
            with LocalCluster(
                n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
            ) as local_cluster:
                fit_search(search, X, y, scheduler=local_cluster.scheduler_address)
        else:
            fit_search(search, X, y)
        seconds = time.perf_counter() - start
        # The time of the fits themselves, summed: a slower wall time with the
        # same sum means waiting between fits, a larger sum slower fits.
        fits = search.cv_results_["mean_fit_time"].sum() * search.n_splits_
        best = f"best {search.best_params_} {search.best_score_:.4f}"
        print(f"{name}: {seconds:.0f} s, fits {fits:.0f} s, {best}", flush=True)
        return seconds, fits, search.cv_results_["mean_test_score"]

    serial = run("1 job")
    two = run("2 jobs", n_jobs=2)
    dask = run("Dask LocalCluster, 2 workers x 1 thread", cluster=True)
    print()
    print("| run | wall time | vs 1 job | fit time, summed over fits |")
    print("|---|---|---|---|")
    for name, (seconds, fits, _) in [("1 job (2 torch threads)", serial), ("2 jobs (1 thread each)", two),
                                     ("Dask, 2 workers x 1 thread", dask)]:  # fmt: skip
        print(f"| {name} | {seconds:.0f} s | {seconds / serial[0]:.2f} | {fits:.0f} s |")
    print(f"\n2-job and Dask scores identical: {np.array_equal(two[2], dask[2])}")


if __name__ == "__main__":
    main()
