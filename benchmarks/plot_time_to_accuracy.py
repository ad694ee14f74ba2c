"""Plot test accuracy against fit time from runs of bench_time_to_accuracy.py --json.

Usage:
    python benchmarks/plot_time_to_accuracy.py OUT.png RUN.txt [RUN.txt ...]

Each RUN.txt is the output of one ``bench_time_to_accuracy.py ... --json``
run, whose last line holds its figures. Draws, per configuration, the mean
test accuracy against the mean fit time, with error bars of one standard
deviation over the seeds, in units (the plain LeNet epoch of that run) and in
seconds side by side; and prints the same figures as a markdown table.
"""

import argparse
import json
import statistics
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter


def read_run(path):
    lines = Path(path).read_text().strip().splitlines()
    if not lines:
        raise SystemExit(f"{path}: empty; expected the output of bench_time_to_accuracy.py --json")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError:
        raise SystemExit(f"{path}: its last line is not the JSON of bench_time_to_accuracy.py --json") from None


def mean_sd(values):
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("runs", nargs="+", help="outputs of bench_time_to_accuracy.py --json")
    args = parser.parse_args()
    runs = [read_run(path) for path in args.runs]

    print("| configuration | seeds | fit time (s) | units | test accuracy, mean ± sd | range |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        seconds, units, accuracy = (mean_sd(run[key]) for key in ("fit_seconds", "units", "accuracies"))
        print(
            f"| {run['config']} | {len(run['seeds'])} | {seconds[0]:.1f} ± {seconds[1]:.1f} "
            f"| {units[0]:.2f} ± {units[1]:.2f} | {accuracy[0]:.2%} ± {accuracy[1]:.2%} "
            f"| {min(run['accuracies']):.2%}-{max(run['accuracies']):.2%} |"
        )

    fig = Figure(figsize=(10, 4), layout="constrained")
    for ax, key, label in zip(fig.subplots(1, 2, sharey=True), ("units", "fit_seconds"), ("units", "seconds")):
        for run in runs:
            x, x_sd = mean_sd(run[key])
            y, y_sd = mean_sd([100 * a for a in run["accuracies"]])
            ax.errorbar(x, y, xerr=x_sd, yerr=y_sd, fmt="o", capsize=3)
            ax.annotate(
                f"{run['config']} ({len(run['seeds'])} seeds)",
                (x, y),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
            )
        ax.set_xscale("log")
        # Plain numbers at 1-2-5 steps, no labels on the minor ticks (they overlap).
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.2)
        ax.set_xlabel(f"fit time ({label}, log scale)")
        ax.grid(True, which="both", alpha=0.3)
    fig.axes[0].set_ylabel("test accuracy (%), mean ± sd")
    fig.suptitle("Time to accuracy on 2 CPU cores (unit: one epoch of the plain LeNet loop)")
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
