"""The ``sk-mnist`` command: compare models, train, evaluate and predict.

Each subcommand is a small function registered on the argument parser by
:func:`build_parser`; the work itself is done by the library
(:func:`sk_mnist.baselines.make_baseline`, :func:`sk_mnist.report.compare`,
:func:`sk_mnist.report.write_report`), so that anything the command does can
be done from Python too. Bad input (an unknown model, an unreadable image, a
missing model file) is one line on stderr and exit status 2, not a traceback.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import ParameterGrid

from . import __version__
from . import _cli_inputs as inputs
from ._optional import require
from .baselines import DEFAULT_MODELS, RUN_NOTES, list_baselines
from .datasets import load_mnist, read_digit_image
from .persistence import SAFE_SUFFIX, SKOPS_SUFFIX, save_model
from .search import SEARCH_RUNS

__all__ = ["SUBCOMMANDS", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- compare ------------------------------------------------------------------


def _format_table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [
        "  ".join(
            cell.ljust(width) if col == 0 else cell.rjust(width)
            for col, (cell, width) in enumerate(zip(row, widths))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def compare_command(args):
    """Fit the chosen models, print a summary table and write the report."""
    from .report import compare, summary_rows, write_report

    inputs.require_report_extra("sk-mnist compare")
    run = "quick" if args.quick else "full" if args.full else "default"
    names = inputs.model_names(args.models) if args.models is not None else list(DEFAULT_MODELS)
    X_train, y_train = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    if args.test_size is not None:
        X_test, y_test = X_test[: args.test_size], y_test[: args.test_size]
    models, sizes = {}, {}
    for name in names:
        models[name], sizes[name] = inputs.build_model(name, run, args)
    inputs.writable_folder(args.out)  # before the fits, not after them
    print(f"sk-mnist compare: {len(models)} models, {run} run, {len(y_test):,} test images", file=sys.stderr)
    start = time.perf_counter()
    comparison = compare(models, X_train, y_train, X_test, y_test, train_sizes=sizes, progress=True)
    elapsed = time.perf_counter() - start

    header, rows = summary_rows(comparison)
    shown = [i for i, column in enumerate(header) if not column.startswith("published method")]
    print(_format_table([header[i] for i in shown], [[row[i] for i in shown] for row in rows]))
    notes = [RUN_NOTES[run], f"Command: {args.command_line}. Models fitted and scored in {elapsed:.0f} s."]
    path = write_report(comparison, args.out, notes=notes)
    print(f"\nfitted and scored in {elapsed:.0f} s; report: {path.resolve()}")
    return 0


# -- train, evaluate ----------------------------------------------------------


def train_command(args):
    """Fit one model on the training set and save it."""
    from .report import with_epoch_progress, without_epoch_progress

    name = inputs.model_names(args.model)
    if len(name) != 1:
        raise inputs.UsageError("train takes one model")
    out = args.out or inputs.default_model_file(name[0])
    inputs.check_model_path(name[0], out)  # before the fit, not after it
    inputs.writable_folder(Path(out).parent)
    model, train_size = inputs.build_model(name[0], "full", args)
    X, y = load_mnist("train", return_X_y=True)
    X, y = X[:train_size], y[:train_size]
    with_epoch_progress(model, desc=name[0])
    start = time.perf_counter()
    model.fit(X, y)
    print(f"{name[0]}: fitted on {len(y):,} images in {time.perf_counter() - start:.1f} s")
    without_epoch_progress(model)
    try:
        save_model(model, out)
    except (OSError, ValueError, TypeError) as exc:  # TypeError: not storable as .skm
        raise inputs.UsageError(f"cannot save the model to {out!r}: {exc}") from exc
    print(f"saved to {out}")
    return 0


def evaluate_command(args):
    """Score a saved model on the test set."""
    from .report import proportion_interval

    model = inputs.load_classifier(args)
    X, y = load_mnist("test", return_X_y=True)
    if args.test_size is not None:
        X, y = X[: args.test_size], y[: args.test_size]
    start = time.perf_counter()
    correct = int(np.count_nonzero(model.predict(X) == y))
    seconds = time.perf_counter() - start
    low, high = proportion_interval(correct, len(y))
    print(
        f"accuracy {correct / len(y):.2%} (95% CI {low:.2%}-{high:.2%}), {len(y) - correct} errors "
        f"in {len(y):,} test images; predicted in {seconds:.2f} s"
    )
    return 0


def export_command(args):
    """Export a saved CNN (or pipeline ending in one) to ONNX."""
    from .export import to_onnx

    inputs.writable_folder(Path(args.out).parent)  # before the export, not after it
    model = inputs.load(inputs.model_path(args.model), args.trust_pickle)
    calibration = load_mnist("train", return_X_y=True)[0] if args.int8 else None
    try:
        path = to_onnx(model, args.out, quantize="int8" if args.int8 else None, calibration_data=calibration)
    except (TypeError, ValueError, NotImplementedError, OSError) as exc:
        raise inputs.UsageError(f"cannot export {str(args.model)!r}: {exc}") from exc
    print(f"wrote {path} ({path.stat().st_size / 1024:,.0f} kB{', INT8' if args.int8 else ''})")
    return 0


# -- search -------------------------------------------------------------------


def search_command(args):
    """Grid-search the CNN's regularization; write the results, the heatmap and a report section."""
    from .report import add_report_section
    from .search import (
        fit_search,
        make_search,
        plot_search,
        ranked_results,
        regularization_grid,
        scheduler_address,
    )

    inputs.require_report_extra("sk-mnist search")

    try:
        scheduler = scheduler_address(args.scheduler)
    except ValueError as exc:
        raise inputs.UsageError(str(exc)) from exc
    train_size, epochs, cv = SEARCH_RUNS["full" if args.full else "default"]
    train_size, epochs = args.train_size or train_size, args.epochs or epochs
    X, y = load_mnist("train", return_X_y=True)
    X, y = X[:train_size], y[:train_size]
    search = make_search(
        regularization_grid(full=args.full),
        cv=args.cv or cv,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        progress=True,
        max_epochs=epochs,
        verbose=0,
    )
    out = Path(args.out)
    inputs.writable_folder(out)
    n_fits = len(ParameterGrid(search.param_grid)) * search.cv
    where = f"on Dask at {scheduler}" if scheduler else f"here, n_jobs={args.n_jobs}"
    print(
        f"sk-mnist search: {n_fits} fits on {len(y):,} images, {epochs} epochs each, {where}", file=sys.stderr
    )
    start = time.perf_counter()
    try:
        fit_search(search, X, y, scheduler=scheduler)
    except ConnectionError as exc:
        raise inputs.UsageError(str(exc)) from exc
    elapsed = time.perf_counter() - start

    table = ranked_results(search.cv_results_)
    columns = [column for column in table.columns if column != "rank_test_score"]
    header = ["rank", *(column.removeprefix("cnn__") for column in columns)]
    rows = [
        [str(rank), *(_format_cell(row[column]) for column in columns)]
        for rank, (_, row) in zip(table["rank_test_score"], table.iterrows())
    ]
    print(_format_table(header, rows))
    pd = require("pandas", "report", "sk-mnist search")  # checked before the search
    pd.DataFrame(search.cv_results_).to_csv(out / "search_results.csv", index=False)
    fig = plot_search(search.cv_results_, out / "search.png")
    summary = (
        f"Grid search over {len(table)} candidates, {search.n_splits_}-fold cross-validated accuracy on "
        f"{len(y):,} training images, {epochs} epochs per fit, in {elapsed:.0f} s {where}. "
        f"Best: {_format_params(search.best_params_)}, mean accuracy {search.best_score_:.2%}. "
        f"Command: {args.command_line}."
    )
    print(f"\n{summary}\nwrote {out / 'search_results.csv'} and {out / 'search.png'}")
    if (out / "report.md").is_file():
        add_report_section(
            out,
            "Regularization search",
            paragraphs=[summary],
            table=(header, rows),
            figure=("search.png", fig, "Mean cross-validated accuracy of each candidate (best outlined)."),
        )
        print(f"added a section to {out / 'report.html'}")
    return 0


def _format_params(params):
    return ", ".join(f"{name.removeprefix('cnn__')}={value}" for name, value in params.items())


def _format_cell(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# -- predict ------------------------------------------------------------------


def predict_command(args):
    """Predict the digit in each picture."""
    model = inputs.load_classifier(args)
    # A picture that cannot be read is reported, and the others still predicted.
    paths, digits = [], []
    for path in args.images:
        try:
            digits.append(read_digit_image(path))
        except (OSError, ValueError) as exc:
            print(f"sk-mnist: error: cannot read image {path!r}: {exc}", file=sys.stderr)
        else:
            paths.append(path)
    if not digits:
        return 2
    X = np.stack(digits)
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        labels, confidences = model.classes_[proba.argmax(axis=1)], proba.max(axis=1)
        for path, label, confidence in zip(paths, labels, confidences):
            print(f"{path}: {label} (probability {confidence:.3f})")
    else:
        for path, label in zip(paths, model.predict(X)):
            print(f"{path}: {label}")
    return 0 if len(paths) == len(args.images) else 2


# -- the parser -----------------------------------------------------------------


def _add_count(parser, flag, help, metavar="N"):
    """An optional positive count, None unless given; ``help`` states its default."""
    parser.add_argument(flag, type=inputs.parse_positive, default=None, metavar=metavar, help=help)


def _add_model_options(parser, epochs, train_size):
    """Options shared by the commands that build and fit models; ``epochs``, ``train_size``: their defaults."""
    parser.add_argument(
        "--random-state",
        type=inputs.parse_seed,
        default=0,
        metavar="N",
        help="seed of every model (default 0)",
    )
    parser.add_argument(
        "--n-jobs",
        type=inputs.parse_n_jobs,
        default=-1,
        metavar="N",
        help="parallel jobs where a model has them (default -1: all cores)",
    )
    _add_count(parser, "--epochs", f"most epochs of the CNNs (default: {epochs})")
    _add_count(parser, "--train-size", f"training images per model (default: {train_size})")


def _add_test_size(parser):
    _add_count(parser, "--test-size", "score on the first N test images (default: all 10,000)")


def _add_compare(commands):
    sub = commands.add_parser(
        "compare",
        help="fit several models, print a table and write a report",
        description="Fit several models on MNIST, score them on the test set, print a summary and write "
        "report.md, report.html, results.json and figures to --out.",
    )
    sub.add_argument(
        "--models",
        metavar="LIST",
        help=f"comma-separated, from: {', '.join(list_baselines())}; '+deskew' after a name deskews first "
        f"(default: {','.join(DEFAULT_MODELS)})",
    )
    size = sub.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small subsets and few epochs: about a minute")
    size.add_argument("--full", action="store_true", help="every model on all 60,000 training images")
    _add_model_options(sub, epochs="the run's, per model", train_size="the run's, per model")
    _add_test_size(sub)
    sub.add_argument("--out", default="report", metavar="DIR", help="report folder (default: report)")
    sub.set_defaults(func=compare_command)


def _add_train(commands):
    sub = commands.add_parser(
        "train",
        help="fit one model and save it",
        description="Fit one model on the MNIST training set (all of it unless --train-size) and save it.",
    )
    sub.add_argument("model", help=f"one of: {', '.join(list_baselines())}; '+deskew' after it deskews first")
    _add_model_options(sub, epochs="the model's own", train_size="all 60,000")
    sub.add_argument(
        "--out",
        default=None,
        metavar="PATH",
        help=f"default: {inputs.DEFAULT_MODEL_FILES[0]} for a CNN, else {inputs.DEFAULT_MODEL_FILES[1]}: formats that "
        f"load without running code ({SAFE_SUFFIX} holds the CNNs, {SKOPS_SUFFIX} the other models); any "
        "other suffix saves a joblib pickle",
    )
    sub.set_defaults(func=train_command)


def _add_model_file(parser, name):
    """The model file to read (``name`` "model": positional; "--model": an option), and --trust-pickle."""
    help = (
        f"{SAFE_SUFFIX} or {SKOPS_SUFFIX} file, or (evaluate, predict) an {inputs.ONNX_SUFFIX} file from export "
        f"(default: {' or '.join(inputs.DEFAULT_MODEL_FILES)}, whichever exists)"
    )
    if name == "model":
        parser.add_argument("model", nargs="?", default=None, help=help)
    else:
        parser.add_argument("--model", default=None, metavar="PATH", help=help)
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="read a model file of another suffix as a joblib pickle, which runs any code it holds: "
        "only for files you trust",
    )


def _add_evaluate(commands):
    sub = commands.add_parser(
        "evaluate",
        help="score a saved model on the test set",
        description="Score a saved model on the MNIST test set (all 10,000 images unless --test-size): "
        "accuracy with its 95% confidence interval, the number of errors and the time to predict.",
    )
    _add_model_file(sub, "model")
    _add_test_size(sub)
    sub.set_defaults(func=evaluate_command)


def _add_predict(commands):
    sub = commands.add_parser(
        "predict",
        help="recognize the digits in picture files",
        description="Print the digit in each picture and its probability. Pictures are normalized as MNIST "
        "was made: inverted if light, cropped to the ink, fitted into 20x20, centred by mass in 28x28.",
    )
    sub.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="picture files of one digit each, in any format Pillow reads (PNG, JPEG, ...); one that "
        "cannot be read is reported and the others predicted",
    )
    _add_model_file(sub, "--model")
    sub.set_defaults(func=predict_command)


def _add_export(commands):
    sub = commands.add_parser(
        "export",
        help="export a saved CNN to ONNX",
        description="Write a saved MNISTCNNClassifier (or a pipeline of sk_mnist transformers ending in one) "
        "as an ONNX graph from raw pixels to class probabilities; see sk_mnist.export.to_onnx.",
    )
    _add_model_file(sub, "model")
    sub.add_argument("--format", choices=["onnx"], default="onnx", help="the only format: onnx")
    sub.add_argument(
        "--int8", action="store_true", help="quantize to INT8, calibrated on 2,000 training images"
    )
    sub.add_argument("--out", default="model.onnx", metavar="FILE", help="default: model.onnx")
    sub.set_defaults(func=export_command)


def _add_search(commands):
    sub = commands.add_parser(
        "search",
        help="grid-search the CNN's regularization",
        description="Cross-validate the CNN over dropout, weight decay, batch norm and augmentation (with "
        "--full: more values and two learning rates, on all 60,000 images), here or on a Dask cluster. "
        "Writes search_results.csv (cv_results_) and search.png to --out, and a section of the comparison "
        "report when --out holds one.",
    )
    sub.add_argument("--full", action="store_true", help="the full grid on all 60,000 training images")
    (size, epochs, folds), (full_size, full_epochs, _) = SEARCH_RUNS["default"], SEARCH_RUNS["full"]
    _add_model_options(
        sub,
        epochs=f"{epochs}; with --full, {full_epochs}",
        train_size=f"{size:,}; with --full, {full_size:,}",
    )
    _add_count(sub, "--cv", f"folds (default {folds})", metavar="K")
    sub.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run the fits on this Dask scheduler, e.g. tcp://10.0.0.5:8786 "
        "(default: $SK_MNIST_DASK_SCHEDULER, or this machine)",
    )
    sub.add_argument("--out", default="report", metavar="DIR", help="output folder (default: report)")
    sub.set_defaults(func=search_command)


#: Each function adds one subcommand, whose ``func`` default runs it.
SUBCOMMANDS = (_add_compare, _add_search, _add_train, _add_evaluate, _add_predict, _add_export)


def build_parser():
    """The ``sk-mnist`` argument parser, one subparser per subcommand.

    Each function of :data:`SUBCOMMANDS` adds one subparser whose ``func``
    default is the function that runs the subcommand on the parsed
    arguments; a new subcommand is two such functions and one entry there.

    Returns
    -------
    parser : argparse.ArgumentParser
        Parses the arguments after the program name.

    See Also
    --------
    main : Parse and run.

    Examples
    --------
    >>> from sk_mnist.cli import build_parser
    >>> args = build_parser().parse_args(["compare", "--quick", "--models", "cnn,knn"])
    >>> args.func.__name__, args.quick, args.models, args.out
    ('compare_command', True, 'cnn,knn', 'report')
    """
    parser = _Parser(prog="sk-mnist", description="MNIST digits with a CNN and classical baselines.")
    parser.add_argument("--version", action="version", version=f"sk_mnist {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, parser_class=_Parser)
    for add in SUBCOMMANDS:
        add(commands)
    return parser


def main(argv=None):
    """Run ``sk-mnist`` with the given arguments (default: the command line).

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after the program name; None reads ``sys.argv``.

    Returns
    -------
    status : int
        0 on success, 2 on bad input (after one line on stderr), 130 when
        interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code
    args.command_line = shlex.join(["sk-mnist", *argv])
    try:
        return args.func(args)
    except inputs.UsageError as exc:
        print(f"sk-mnist: error: {exc}", file=sys.stderr)
    except ImportError as exc:  # an optional dependency; the message names the extra
        print(f"sk-mnist: error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("sk-mnist: interrupted", file=sys.stderr)
        return 130
    return 2
