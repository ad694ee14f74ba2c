"""Write a comparison as a report: Markdown, self-contained HTML, JSON and PNG figures."""

import base64
import hashlib
import html
import io
import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from .._files import atomic_write
from . import _plots
from ._classic import CLASSIC_RESULTS, published_result
from ._compare import _pandas
from ._schema import SCHEMA_VERSION

__all__ = ["add_report_section", "write_report"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .3em .6em; }
th { background: #f0f0f0; white-space: nowrap; vertical-align: bottom; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.missing { text-align: center; color: #888; }
nav.toc { background: #f7f7f7; border: 1px solid #ddd; padding: .5em 1em; display: inline-block; }
nav.toc ul { margin: .3em 0; padding-left: 1.2em; }
figure img { cursor: zoom-in; }
figure:target { position: fixed; inset: 0; margin: 0; padding: 1em; overflow: auto; z-index: 10;
                background: rgba(255, 255, 255, .97); }
figure:target img { max-width: none; width: auto; cursor: zoom-out; }
figure .close { display: none; }
figure:target .close { display: block; font-size: 1.5em; text-decoration: none; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { flex: 0 1 560px; }
.gallery figure img { width: 100%; }
"""


def write_report(comparison, directory, *, title="MNIST model comparison", notes=()):
    """Write a comparison to a folder: ``report.md``, ``report.html``, ``results.json`` and PNGs.

    ``report.html`` is self-contained (styles inline, figures embedded as
    PNG data URIs); ``report.md`` shows the same content and links the PNG
    files beside it; ``results.json`` holds every figure measured, in the
    versioned format described by :data:`RESULTS_SCHEMA`.

    The figures: test accuracy against fit time (log scale), each model's
    confusion matrix, the most-confused digit pairs, a gallery of the most
    accurate model's misclassified test digits, and the learning curves of
    every skorch network trained (when there is one).

    Everything is drawn and composed before the first file is written, and
    each file is replaced atomically: a reader, or a run that fails midway,
    finds every file whole, old or new.

    Parameters
    ----------
    comparison : Comparison
        The result of :func:`compare`.
    directory : str or path-like
        The output folder; created if missing. Files of the same name in it
        are replaced.
    title : str, default="MNIST model comparison"
        Title of the report.
    notes : sequence of str, default=()
        Paragraphs printed under the title (how the run was made, why train
        sizes differ...).

    Returns
    -------
    path : pathlib.Path
        The path of ``report.html``.

    See Also
    --------
    compare : Produce the comparison.

    Examples
    --------
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.baselines import make_baseline
    >>> from sk_mnist.report import compare, write_report
    >>> X, y = load_mnist(return_X_y=True)
    >>> result = compare({"knn": make_baseline("knn")}, X[:500], y[:500], X[-100:], y[-100:])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     html_path = write_report(result, folder)
    ...     results = json.loads((Path(folder) / "results.json").read_text())
    ...     files = sorted(path.name for path in Path(folder).iterdir())
    >>> html_path.name, results["schema_version"], [m["name"] for m in results["models"]]
    ('report.html', 1, ['knn'])
    >>> files  # doctest: +NORMALIZE_WHITESPACE
    ['accuracy_vs_fit_time.png', 'confused_pairs.png', 'confusion_knn.png', 'misclassified.png',
     'report.html', 'report.md', 'results.json']
    """
    directory = Path(directory)
    figures = _draw_figures(comparison)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    names = {key: name for key, (name, _) in figures.items()}
    blocks = _document(comparison, title, list(notes), created, names)
    pngs = {filename: png for filename, png in figures.values()}
    results = _results(comparison, title, list(notes), created, names)
    files = {
        **pngs,
        "report.md": _markdown(blocks).encode("utf-8"),
        "report.html": _html(blocks, title, pngs).encode("utf-8"),
        "results.json": json.dumps(results, indent=1, allow_nan=False).encode("utf-8"),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for filename, data in files.items():
        _write(directory / filename, data)
    return directory / "report.html"


def _write(path, data):
    """Replace the file ``path`` by ``data`` (bytes) atomically."""
    atomic_write(path, lambda fh: fh.write(data))


def add_report_section(directory, heading, *, paragraphs=(), table=None, figure=None):
    """Append a section to the report in a folder: to ``report.md`` and ``report.html``.

    For results made after the comparison, such as a hyper-parameter search
    (``sk-mnist search`` adds one). ``results.json`` is left as it is: its
    schema describes the comparison only.

    Parameters
    ----------
    directory : str or path-like
        A folder written by :func:`write_report`.
    heading : str
        The section's title.
    paragraphs : sequence of str, default=()
        Text under the heading.
    table : tuple of (header, rows), default=None
        A table of strings: a list of column names and a list of rows.
    figure : tuple of (str, matplotlib.figure.Figure, str), default=None
        ``(file name, figure, caption)``: the figure is saved as a PNG of
        that name in the folder, linked from ``report.md`` and embedded in
        ``report.html``.

    Returns
    -------
    path : pathlib.Path
        The path of ``report.html``.

    Raises
    ------
    FileNotFoundError
        If the folder holds no report.

    See Also
    --------
    write_report : Write the report.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.baselines import make_baseline
    >>> from sk_mnist.report import add_report_section, compare, write_report
    >>> X, y = load_mnist(return_X_y=True)
    >>> result = compare({"knn": make_baseline("knn")}, X[:500], y[:500], X[-100:], y[-100:])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     _ = write_report(result, folder)
    ...     _ = add_report_section(folder, "Notes", paragraphs=["Made on a laptop."])
    ...     markdown = (Path(folder) / "report.md").read_text()
    >>> markdown.split("## ")[-1]
    'Notes\\n\\nMade on a laptop.\\n'
    """
    directory = Path(directory)
    markdown_path, html_path = directory / "report.md", directory / "report.html"
    if not (markdown_path.is_file() and html_path.is_file()):
        raise FileNotFoundError(
            f"No report in {str(directory)!r}: write one first (sk-mnist compare --out DIR)."
        )
    blocks = [("h2", heading), *[("p", text) for text in paragraphs]]
    if table is not None:
        blocks.append(("table", *table))
    pngs = {}
    if figure is not None:
        filename, fig, caption = figure
        pngs[filename] = _png(fig)
        blocks.append(("figures", [(filename, caption)]))
    markdown = markdown_path.read_text(encoding="utf-8")
    markdown = markdown.rstrip("\n") + "\n\n" + _markdown(blocks)
    page = html_path.read_text(encoding="utf-8")
    end = page.rindex("</body>")
    page = page[:end] + _html_body(blocks, pngs) + "\n" + page[end:]
    page = page.replace(_TOC_END, _toc_entry(heading) + _TOC_END, 1)
    # These files exist already: an interrupted edit must leave them whole.
    for filename, png in pngs.items():
        _write(directory / filename, png)
    for path, text in ((markdown_path, markdown), (html_path, page)):
        _write(path, text.encode("utf-8"))
    return html_path


# -- figures ------------------------------------------------------------------


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _slug(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def _best_model(comparison):
    """The name of the most accurate model (the first of equals)."""
    return comparison.table["accuracy"].idxmax()


def _draw_figures(comparison):
    """Map each figure's key to ``(file name, PNG bytes)``."""
    figures = {"accuracy_vs_fit_time": _plots.plot_accuracy_vs_fit_time(comparison)}
    used = set()
    for name in comparison.table.index:
        slug = _slug(name)
        while slug in used:  # two names that differ only in punctuation
            slug += "_"
        used.add(slug)
        # One colour scale for every model: the same red means the same count.
        figures[f"confusion_{slug}"] = _plots.plot_confusion_matrix(
            comparison, name, _plots.error_scale(comparison)
        )
    figures["confused_pairs"] = _plots.plot_confused_pairs(comparison)
    figures["misclassified"] = _plots.plot_misclassified(comparison, _best_model(comparison))
    if comparison.histories:
        figures["learning_curves"] = _plots.plot_learning_curves(comparison)
    return {key: (f"{key}.png", _png(fig)) for key, fig in figures.items()}


# -- the document: blocks that render to Markdown and to HTML alike ----------
#
# A block is ("h1" | "h2" | "p", text), ("list", items), ("table", header,
# rows) or ("figures", [(file name, caption), ...]).


def _missing(value):
    return value is None or bool(_pandas().isna(value))


def _percent(value, decimals=2):
    return "–" if _missing(value) else f"{100 * value:.{decimals}f}"


def _size(n_bytes):
    for unit in ("B", "kB", "MB"):
        if n_bytes < 1000:
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return f"{n_bytes:.2f} GB"


def _seconds(value):
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _pvalue(value):
    # chi2.sf underflows to 0 for very different models.
    return "< 1e-300" if value == 0 else f"{value:.2g}"


def summary_rows(comparison):
    """The measured results as rows of text, one per model, ready to print.

    The report's results table and the terminal summary of ``sk-mnist
    compare`` are made of these rows.

    Parameters
    ----------
    comparison : Comparison
        The result of :func:`compare`.

    Returns
    -------
    header : list of str
        Column names: model, training images, accuracy and its interval (%),
        errors, test error (%), the published counterpart's test error (%)
        and method, fit and predict time (s), throughput (images/s), model
        size and parameter count.
    rows : list of list of str
        One row per model, formatted; "–" where a value is not defined.

    See Also
    --------
    write_report : Writes these rows, and much more, as a report.

    Examples
    --------
    >>> from sk_mnist import load_mnist
    >>> from sk_mnist.baselines import make_baseline
    >>> from sk_mnist.report import compare, summary_rows
    >>> X, y = load_mnist(return_X_y=True)
    >>> result = compare({"knn": make_baseline("knn")}, X[:500], y[:500], X[-100:], y[-100:])
    >>> header, rows = summary_rows(result)
    >>> dict(zip(header[:7], rows[0][:7]))  # doctest: +NORMALIZE_WHITESPACE
    {'model': 'knn', 'train images': '500', 'accuracy %': '88.00', '95% CI %': '80.19–93.00', 'errors': '12',
     'test error %': '12.00', 'published error %': '5.00'}
    """
    header = [
        "model",
        "train images",
        "accuracy %",
        f"{comparison.confidence:.0%} CI %",
        "errors",
        "test error %",
        "published error %",
        "published method",
        "fit s",
        "predict s",
        "images/s",
        "size",
        "parameters",
    ]
    rows = []
    for name, row in comparison.table.to_dict("index").items():
        published = published_result(name)
        rows.append(
            [
                name,
                f"{row['train_size']:,}",
                _percent(row["accuracy"]),
                f"{_percent(row['ci_low'])}–{_percent(row['ci_high'])}",
                f"{row['n_errors']:,}",
                _percent(1 - row["accuracy"]),
                "–" if published is None else _error_rate(published.test_error),
                "–" if published is None else published.method,
                _seconds(row["fit_time"]),
                _seconds(row["predict_time"]),
                f"{row['throughput']:,.0f}",
                _size(row["model_size"]),
                "–" if _missing(row["n_parameters"]) else f"{row['n_parameters']:,}",
            ]
        )
    return header, rows


def _error_rate(percent):
    """A reference error rate with two decimals, or three where it has them (0.255 is not 0.26)."""
    text = f"{percent:.3f}"
    return text.removesuffix("0")


_COLUMNS_TEXT = (
    "Times are wall-clock seconds; 'images/s' is test images predicted per second; 'size' is the fitted "
    "model pickled; 'parameters' counts learned weights where a model has a fixed set of them. 'Published "
    "error' is the classic result for the same kind of model (next section)."
)
_CLASSIC_TEXT = (
    "Test error rates on the same 10,000 MNIST test images, as published (LeCun et al. 1998 and the MNIST "
    "page; Cireşan et al. 2012), and two modern figures read without choosing runs by their test score: "
    "the mean over seeds of An et al. 2020's simple CNN at its final epoch, and of Deotte's 15-CNN ensemble. "
    "The last two rows are this package's frontier recipe read the same way: its mean over five seeds and "
    "their vote, each fitted for up to ten minutes on two CPU cores (docs/benchmarks.md)."
)
_MCNEMAR_TEXT = (
    "For each pair of models, the test images on which only one of them is right, and the p-value of "
    "McNemar's test that both err equally often: exact binomial when fewer than 25 images are discordant, "
    "chi-square with continuity correction otherwise. The p-values are not corrected for multiple "
    "comparisons."
)
_INTERVALS = {"wilson": "Wilson score", "exact": "exact (Clopper-Pearson)"}


def _document(comparison, title, notes, created, figures):
    table, n_test = comparison.table, len(comparison.y_test)
    sizes = set(table["train_size"])
    trained_on = (
        f"all on the first {next(iter(sizes)):,} training images"
        if len(sizes) == 1
        else "each on the first n training images, n chosen per model (column 'train images')"
    )
    intervals = (
        f"Accuracy intervals: {comparison.confidence:.0%} {_INTERVALS[comparison.interval]} intervals."
    )
    best = _best_model(comparison)
    confusions = [
        (figures[key], f"Confusion matrix of {name}.")
        for key, name in zip([key for key in figures if key.startswith("confusion_")], table.index)
    ]
    summary = (
        f"{len(table)} models fitted {trained_on} and scored on {n_test:,} test images. "
        f"Generated {created} by sk_mnist {__version__}."
    )
    blocks = [
        ("h1", title),
        ("p", summary),
        *[("p", note) for note in notes],
        ("h2", "Results"),
        ("table", *summary_rows(comparison)),
        ("p", f"{intervals} {_COLUMNS_TEXT}"),
        ("figures", [(figures["accuracy_vs_fit_time"], "Test accuracy against fit time (log scale).")]),
        ("h2", "Classic and frontier results"),
        ("p", _CLASSIC_TEXT),
        ("table", ["method", "test error %", "source"],
         [[r.method, _error_rate(r.test_error), r.source] for r in CLASSIC_RESULTS]),
    ]  # fmt: skip
    if len(comparison.mcnemar):
        blocks += [
            ("h2", "Pairwise McNemar tests"),
            ("p", _MCNEMAR_TEXT),
            ("table", *_mcnemar_rows(comparison)),
        ]
    recall = comparison.per_class_recall
    blocks += [
        ("h2", "Per-class recall (%)"),
        ("table", ["model", *map(str, recall.columns)],
         [[name, *(_percent(value, 1) for value in row)] for name, row in zip(recall.index, recall.values)]),
        ("h2", "Most-confused digit pairs"),
        ("figures", [(figures["confused_pairs"],
                      "Test errors per model for the (true, predicted) pairs most often confused overall.")]),
        ("h2", "Confusion matrices"),
        ("figures", confusions),
        ("h2", "Misclassified test digits"),
        ("figures", [(figures["misclassified"],
                      f"Test digits that the most accurate model, {best}, gets wrong: true → predicted.")]),
    ]  # fmt: skip
    if "learning_curves" in figures:
        caption = (
            f"Loss per epoch of {', '.join(comparison.histories)}, and validation accuracy where a fit held out "
            "a validation split. Validation loss can lie below training loss: the training images are "
            "randomly rotated, scaled and shifted and their labels smoothed, the validation images are "
            "neither."
        )
        blocks += [("h2", "Learning curves"), ("figures", [(figures["learning_curves"], caption)])]
    warned = [
        f"{name}: {message}" for name, messages in comparison.fit_warnings.items() for message in messages
    ]
    if warned:
        blocks += [("h2", "Warnings while fitting"), ("list", warned)]
    blocks += [
        ("h2", "Environment"),
        ("list", [f"{key}: {value}" for key, value in comparison.environment.items()]),
    ]
    return blocks


def _mcnemar_rows(comparison):
    header = ["model A", "model B", "only A right", "only B right", "test", "statistic", "p-value"]
    rows = [
        [
            test.model_a,
            test.model_b,
            f"{test.only_a_correct:,}",
            f"{test.only_b_correct:,}",
            "exact" if test.exact else "chi-square",
            f"{test.statistic:.3g}",
            _pvalue(test.pvalue),
        ]
        for test in comparison.mcnemar.itertuples()
    ]
    return header, rows


def _markdown(blocks):
    def cell(text):
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = []
    for kind, *content in blocks:
        if kind == "h1":
            out.append(f"# {content[0]}")
        elif kind == "h2":
            out.append(f"## {content[0]}")
        elif kind == "p":
            out.append(content[0])
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in content[0]))
        elif kind == "table":
            header, rows = content
            lines = [
                "| " + " | ".join(map(cell, header)) + " |",
                "|" + "|".join("---" for _ in header) + "|",
                *("| " + " | ".join(map(cell, row)) + " |" for row in rows),
            ]
            out.append("\n".join(lines))
        elif kind == "figures":
            out.append("\n\n".join(f"![{caption}]({filename})" for filename, caption in content[0]))
    return "\n\n".join(out) + "\n"


#: Where the table of contents ends: add_report_section lists its section there.
_TOC_END = "<!-- end of contents -->"


def _html(blocks, title, pngs):
    esc = html.escape
    head = (
        f'<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>"
    )
    # The contents, after the title and the notes under it.
    first_section = next(i for i, (kind, *_) in enumerate(blocks) if kind == "h2")
    toc = "".join(_toc_entry(content[0]) for kind, *content in blocks if kind == "h2")
    nav = f'<nav class="toc"><strong>Contents</strong><ul>{toc}{_TOC_END}</ul></nav>'
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{head}\n</head>\n<body>\n'
        + _html_body(blocks[:first_section], pngs)
        + f"\n{nav}\n"
        + _html_body(blocks[first_section:], pngs)
        + "\n</body>\n</html>\n"
    )


def _anchor(heading):
    return "section-" + _slug(heading).lower()


def _toc_entry(heading):
    return f'<li><a href="#{_anchor(heading)}">{html.escape(heading)}</a></li>'


def _html_body(blocks, pngs):
    esc = html.escape
    body = []
    for kind, *content in blocks:
        if kind == "h2":
            body.append(f'<h2 id="{_anchor(content[0])}">{esc(content[0])}</h2>')
        elif kind in ("h1", "p"):
            body.append(f"<{kind}>{esc(content[0])}</{kind}>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in content[0]) + "</ul>")
        elif kind == "table":
            body.append(_html_table(*content))
        elif kind == "figures":
            items = "".join(_html_figure(pngs[filename], caption) for filename, caption in content[0])
            body.append(f'<div class="gallery">{items}</div>' if len(content[0]) > 1 else items)
    return "\n".join(body)


def _html_table(header, rows):
    def cell(col, value):
        # The first column names the row; numbers are right-aligned, a missing value centred.
        if col > 0 and value == "–":
            return '<td class="missing">–</td>'
        numeric = col > 0 and re.fullmatch(r"[<\d.,–\s e+-]+( [kMG]?B)?", value)
        return f'<td class="num">{html.escape(value)}</td>' if numeric else f"<td>{html.escape(value)}</td>"

    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(cell(col, value) for col, value in enumerate(row)) + "</tr>" for row in rows
    )
    # Wide tables scroll inside their box; the page itself never scrolls sideways.
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _html_figure(png, caption):
    # Embedded as a data URI: the page loads nothing from outside itself. A
    # click on the figure shows it at full size (its id as the page's target).
    source = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    anchor = "figure-" + hashlib.sha256(png).hexdigest()[:12]
    caption = html.escape(caption)
    return (
        f'<figure id="{anchor}"><a class="close" href="#_" title="close">×</a>'
        f'<a href="#{anchor}"><img alt="{caption}" src="{source}"></a><figcaption>{caption}</figcaption></figure>'
    )


# -- results.json ---------------------------------------------------------------


def _plain(value):
    """A JSON value: numpy scalars unwrapped, missing numbers as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if _missing(value) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def _results(comparison, title, notes, created, figures):
    models = []
    for name, row in comparison.table.to_dict("index").items():
        published = published_result(name)
        models.append(
            {
                "name": name,
                "estimator": repr(comparison.estimators[name]),
                **{column: _plain(value) for column, value in row.items()},
                "per_class_recall": [_plain(v) for v in comparison.per_class_recall.loc[name]],
                "confusion_matrix": comparison.confusion_matrices[name].tolist(),
                "histories": [
                    [
                        {"epoch": int(epoch), **{k: _plain(v) for k, v in values.items()}}
                        for epoch, values in history.to_dict("index").items()
                    ]
                    for history in comparison.histories.get(name, [])
                ],
                "warnings": comparison.fit_warnings.get(name, []),
                "published": None if published is None else published._asdict(),
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": f"sk_mnist {__version__}",
        "created": created,
        "title": title,
        "notes": notes,
        "test_set": {"n_samples": len(comparison.y_test), "classes": [_plain(c) for c in comparison.classes]},
        "confidence": comparison.confidence,
        "interval": comparison.interval,
        "environment": {key: _plain(value) for key, value in comparison.environment.items()},
        "models": models,
        "mcnemar": [
            {k: _plain(v) for k, v in test.items()} for test in comparison.mcnemar.to_dict("records")
        ],
        "classic_results": [result._asdict() for result in CLASSIC_RESULTS],
        "figures": figures,
    }
