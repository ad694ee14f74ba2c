"""Incremental learning of new classes: fit on digits 0-7, partial_fit on 8-9.

Usage: python benchmarks/bench_incremental.py [--calls 3] [--rehearsal-size 8000] [--lr 3e-4]

The full protocol: the 8-class model is fitted on every training image of
digits 0-7 with the default recipe, then partial_fit is called ``--calls``
times on every training image of digits 8 and 9. Reported: accuracy on all
ten test digits, on the old (0-7) and new (8-9) test digits, the old-class
drop, and the cost of the partial_fit calls against refitting from scratch on
all ten digits (wall time, and samples processed).
"""

import argparse
import time

from sk_mnist import MNISTCNNClassifier, load_mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--rehearsal-size", type=int, default=8000)
    parser.add_argument("--lr", type=float, default=3e-4, help="learning rate of the partial_fit calls")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()

    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    old, old_test = y < 8, y_test < 8

    def scores(clf):
        return (
            clf.score(X_test, y_test),
            clf.score(X_test[old_test], y_test[old_test]),
            clf.score(X_test[~old_test], y_test[~old_test]),
        )

    params = {"random_state": args.random_state, "rehearsal_size": args.rehearsal_size}
    start = time.perf_counter()
    clf = MNISTCNNClassifier(**params).fit(X[old], y[old])
    base_time = time.perf_counter() - start
    _, old_before, _ = scores(clf)
    print(f"fit on 0-7: {clf.n_iter_} epochs, {base_time:.0f} s, old-class accuracy {old_before:.4f}")

    clf.set_params(lr=args.lr)
    start = time.perf_counter()
    seen = 0
    for call in range(args.calls):
        epoch_start = len(clf.history_)
        clf.partial_fit(X[~old], y[~old])
        seen += sum(clf.history_[epoch_start:, "train_batch_count"]) * clf.batch_size
        all_, old_acc, new_acc = scores(clf)
        print(f"partial_fit {call + 1}: all {all_:.4f}, old {old_acc:.4f}, new {new_acc:.4f}")
    incremental_time = time.perf_counter() - start

    start = time.perf_counter()
    scratch = MNISTCNNClassifier(**params).fit(X, y)
    scratch_time = time.perf_counter() - start
    scratch_seen = sum(scratch.history_[:, "train_batch_count"]) * scratch.batch_size
    all_s, old_s, new_s = scores(scratch)

    print()
    print("| model | all 10 | old 0-7 | new 8-9 | old-class drop | time | samples processed |")
    print("|---|---|---|---|---|---|---|")
    print(f"| fit on 0-7 | – | {old_before:.2%} | – | – | {base_time:.0f} s | – |")
    print(
        f"| + {args.calls} x partial_fit on 8-9 | {all_:.2%} | {old_acc:.2%} | {new_acc:.2%} | "
        f"{(old_before - old_acc) * 100:.2f} points | {incremental_time:.0f} s "
        f"({incremental_time / scratch_time:.0%} of refit) | ~{seen:,} ({seen / scratch_seen:.0%} of refit) |"
    )
    print(
        f"| refit from scratch on 0-9 | {all_s:.2%} | {old_s:.2%} | {new_s:.2%} | – "
        f"| {scratch_time:.0f} s | ~{scratch_seen:,} |"
    )


if __name__ == "__main__":
    main()
