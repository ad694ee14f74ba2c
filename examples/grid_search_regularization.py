"""
Tune the CNN's regularization with GridSearchCV, here or on a Dask cluster
==========================================================================

Cross-validates a ``Pipeline(GlobalStandardizer(), MNISTCNNClassifier())``
over dropout, L2 weight decay, batch normalization and augmentation (16
candidates, 3 folds), prints the candidates ranked by mean accuracy and saves
a heatmap of the scores. By default on 6,000 training images with 5 epochs
per fit: about 4 minutes on 2 cores. ``--full`` searches a larger grid (72
candidates, with two learning rates) on all 60,000 images: hours on a laptop,
minutes on a cluster (``--scheduler tcp://HOST:8786``).

Run: python examples/grid_search_regularization.py [--full] [--n-jobs N] [--scheduler ADDRESS]
"""

import argparse
import time

import matplotlib.pyplot as plt

from sk_mnist import load_mnist
from sk_mnist.search import fit_search, make_search, plot_search, ranked_results, regularization_grid


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the full grid on all 60,000 images")
    parser.add_argument(
        "--n-jobs", type=int, default=-1, help="parallel fits on this machine (default: all cores)"
    )
    parser.add_argument("--scheduler", default=None, help="a Dask scheduler's address; default: this machine")
    parser.add_argument(
        "--train-size", type=int, default=None, help="training images (default 6,000; --full 60,000)"
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs per fit (default 5; --full 15)")
    parser.add_argument("--plot", default="grid_search_regularization.png", help="where to save the heatmap")
    args = parser.parse_args(argv)

    train_size = args.train_size or (60_000 if args.full else 6_000)
    X, y = load_mnist("train", return_X_y=True)
    X, y = X[:train_size], y[:train_size]

    # GlobalStandardizer in front of the CNN, every fit seeded with random_state=0.
    search = make_search(
        regularization_grid(full=args.full),
        cv=3,
        n_jobs=args.n_jobs,
        max_epochs=args.epochs or (15 if args.full else 5),
        verbose=0,
    )
    start = time.perf_counter()
    fit_search(search, X, y, scheduler=args.scheduler)
    print(f"searched {len(search.cv_results_['params'])} candidates in {time.perf_counter() - start:.0f} s\n")
    print(ranked_results(search.cv_results_).to_string(float_format=lambda value: f"{value:.4f}"))
    print(f"\nbest: {search.best_params_}, mean CV accuracy {search.best_score_:.2%}")
    _, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    plot_search(search.cv_results_, args.plot, ax=ax)
    print(f"heatmap saved to {args.plot}")


if __name__ == "__main__":
    main()
