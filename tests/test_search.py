"""Grid searches over the CNN's regularization: building, fitting, tables, plots, the CLI."""

import re

import numpy as np
import pytest
from sklearn.base import clone

from sk_mnist import cli
from sk_mnist.search import (
    SCHEDULER_ENV,
    GridSearchProgressCV,
    dask_backend,
    fit_search,
    make_search,
    plot_search,
    ranked_results,
    regularization_grid,
    scheduler_address,
)

TINY_GRID = {"cnn__dropout": [0.0, 0.5], "cnn__weight_decay": [0.0, 10.0]}


@pytest.fixture(scope="module")
def searched(small_mnist):
    X, y, _, _ = small_mnist
    # Batches of 32: ten steps in the one epoch on 300 images, where the
    # default 256 gives two, after which the network is still at chance.
    search = make_search(TINY_GRID, cv=2, n_jobs=1, max_epochs=1, early_stopping=False, batch_size=32)
    return fit_search(search, X[:600], y[:600])


def test_make_search_defaults():
    search = make_search()
    assert search.param_grid == regularization_grid()
    assert search.cv == 3 and search.scoring == "accuracy"
    assert [name for name, _ in search.estimator.steps] == ["scale", "cnn"]
    assert search.estimator.named_steps["cnn"].random_state == 0
    # 16 candidates by default, 72 in the full grid, all parameters of the pipeline.
    from sklearn.model_selection import ParameterGrid

    assert len(ParameterGrid(regularization_grid())) == 16
    assert len(ParameterGrid(regularization_grid(full=True))) == 72
    assert set(regularization_grid(full=True)) <= set(search.estimator.get_params())


def test_make_search_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'cv' parameter"):
        make_search(cv=1)


@pytest.mark.parametrize(
    "n_jobs, cv, rounds", [(1, 2, [1] * 5), (2, 3, [2, 2, 1]), (4, 2, [2, 2, 1]), (2, 2, [1] * 5)]
)
def test_candidates_are_evaluated_in_rounds_that_keep_every_worker_busy(n_jobs, cv, rounds):
    from sklearn.neighbors import KNeighborsClassifier

    grid = {"n_neighbors": [1, 2, 3, 4, 5]}
    search = GridSearchProgressCV(KNeighborsClassifier(), grid, cv=cv, n_jobs=n_jobs, progress=False)
    seen = []
    search._run_search(seen.append)
    assert [len(batch) for batch in seen] == rounds
    assert [candidate for batch in seen for candidate in batch] == [{"n_neighbors": k} for k in range(1, 6)]


def test_the_progress_search_finds_what_grid_search_finds_and_shows_its_fits(small_mnist, capsys):
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier

    X, y, _, _ = small_mnist
    grid = {"n_neighbors": [1, 3, 5], "weights": ["uniform", "distance"]}
    plain = GridSearchCV(KNeighborsClassifier(), grid, cv=3, n_jobs=2).fit(X[:600], y[:600])
    capsys.readouterr()
    search = GridSearchProgressCV(KNeighborsClassifier(), grid, cv=3, n_jobs=2).fit(X[:600], y[:600])
    for key in ("params", "mean_test_score", "rank_test_score", "split0_test_score"):
        np.testing.assert_array_equal(search.cv_results_[key], plain.cv_results_[key])
    assert search.best_params_ == plain.best_params_
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    # Three rounds of two candidates on three folds, to 18 fits.
    counts = [int(m[1]) for line in bar if (m := re.search(r"fits \(candidates x folds\).*?(\d+)/18", line))]
    assert counts[-1] == 18 and set(counts) <= {0, 6, 12, 18}
    assert clone(search).get_params()["progress"] is True
    assert make_search(progress=True).progress is True and make_search().progress is False


def test_search_fits_every_candidate_and_ranks_them(searched):
    results = searched.cv_results_
    assert searched.n_splits_ == 2 and len(results["params"]) == 4
    scores = results["mean_test_score"]
    # Chance is 0.1. Without decay the candidates' means were 0.44 to 0.67 at
    # seeds 0, 1 and 2; a network that does not learn (batches of 256, two
    # steps) scores 0.12 to 0.22 here.
    no_decay = np.array([p["cnn__weight_decay"] == 0 for p in results["params"]])
    assert np.all((scores[no_decay] > 0.3) & (scores[no_decay] <= 1))
    table = ranked_results(results)
    assert list(table["rank_test_score"]) == sorted(table["rank_test_score"])
    assert table["mean_test_score"].iloc[0] == scores.max()
    assert {"cnn__dropout", "cnn__weight_decay", "std_test_score", "mean_fit_time"} <= set(table.columns)
    # An L2 penalty of 10 outweighs the loss's gradient: the weights are pulled
    # towards zero, so both such candidates rank below both without decay.
    assert set(table["cnn__weight_decay"].iloc[:2]) == {0.0}


def test_search_is_reproducible(searched, small_mnist):
    X, y, _, _ = small_mnist
    again = fit_search(clone(searched), X[:600], y[:600])
    np.testing.assert_array_equal(
        again.cv_results_["mean_test_score"], searched.cv_results_["mean_test_score"]
    )


def test_plot_search_lays_out_the_grid(searched, tmp_path):
    fig = plot_search(searched.cv_results_, tmp_path / "search.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dropout=0.0", "dropout=0.5"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["weight_decay=0.0", "weight_decay=10.0"]
    cells = ax.images[0].get_array()
    np.testing.assert_array_equal(cells.ravel(), searched.cv_results_["mean_test_score"])
    assert (tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Cells and colour bar in one unit: accuracies in percent.
    texts = [text.get_text() for text in ax.texts]
    assert texts == [f"{score:.2%}" for score in searched.cv_results_["mean_test_score"]]
    colorbar = fig.axes[1]
    fig.canvas.draw()
    ticks = [label.get_text() for label in colorbar.get_yticklabels() if label.get_text()]
    assert ticks and all(re.fullmatch(r"\d+(\.\d+)?%", tick) for tick in ticks), ticks


def test_plot_search_draws_on_the_axes_given(searched):
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    fig = plot_search(searched.cv_results_, ax=ax)
    assert fig is ax.figure and len(ax.images) == 1
    np.testing.assert_array_equal(ax.images[0].get_array().ravel(), searched.cv_results_["mean_test_score"])


def test_scheduler_comes_from_argument_then_environment(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    assert scheduler_address() is None
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://10.1.2.3:8786")
    assert scheduler_address() == "tcp://10.1.2.3:8786"
    assert scheduler_address("tcp://127.0.0.1:1") == "tcp://127.0.0.1:1"
    monkeypatch.setenv(SCHEDULER_ENV, "")
    assert scheduler_address() is None


@pytest.mark.parametrize(
    "address, problem",
    [
        ("not-a-url", "missing port number in address 'not-a-url'"),
        ("tcp://10.0.0.5:port", "invalid literal for int() with base 10: 'port'"),
        ("carrier-pigeon://loft:1", "unknown scheme 'carrier-pigeon'; known: "),
    ],
)
def test_an_address_dask_cannot_parse_is_refused_before_any_connection(monkeypatch, address, problem):
    pytest.importorskip("distributed")
    for given in (address, None):  # as an argument, or from the environment
        monkeypatch.setenv(SCHEDULER_ENV, address)
        with pytest.raises(ValueError) as caught:
            scheduler_address(given)
        message = str(caught.value)
        assert message.startswith(f"bad Dask scheduler address {address!r} ({problem}")
        assert message.endswith("); expected e.g. tcp://10.0.0.5:8786")


def test_dask_backend_needs_a_scheduler(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with pytest.raises(ValueError, match=f"No Dask scheduler.*{SCHEDULER_ENV}"), dask_backend():
        pass


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    pytest.importorskip("distributed")
    # Nothing listens on port 1; dask's connect timeout, shortened for the test.
    import dask

    expected = "Cannot connect to the Dask scheduler at 'tcp://127.0.0.1:1'"
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "2s"}),
        pytest.raises(ConnectionError, match=expected),
        dask_backend("tcp://127.0.0.1:1"),
    ):
        pass


def test_cli_search_writes_results_plot_and_report_section(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    out = tmp_path / "report"
    status = cli.main(["compare", "--quick", "--models", "knn", "--test-size", "200", "--out", str(out)])
    assert status == 0
    before = (out / "report.html").read_text()
    capsys.readouterr()  # the comparison's output
    status = cli.main(
        ["search", "--train-size", "450", "--epochs", "1", "--cv", "2", "--n-jobs", "1", "--out", str(out)]
    )
    assert status == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "Grid search over 16 candidates, 2-fold" in printed
    assert "32/32" in captured.err  # the progress bar over candidates x folds, to its end
    # One table, printed and added to the report: a header, a rule, a row per candidate, best first.
    lines = printed.split("\n\n")[0].splitlines()
    assert len(lines) == 2 + 16 and lines[0].split()[0] == "rank" and set(lines[1]) <= {"-", " "}
    ranks = [int(line.split()[0]) for line in lines[2:]]
    assert ranks[0] == 1 and ranks == sorted(ranks)
    import pandas as pd

    results = pd.read_csv(out / "search_results.csv")
    assert len(results) == 16 and {"param_cnn__dropout", "mean_test_score", "rank_test_score"} <= set(results)
    assert (out / "search.png").is_file()
    markdown, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "## Regularization search" in markdown and "![Mean cross-validated accuracy" in markdown
    for line in [lines[0], *lines[2:]]:
        assert "| " + " | ".join(line.split()) + " |" in markdown
    # The report kept, the section listed in its contents and appended.
    entry = '<li><a href="#section-regularization_search">Regularization search</a></li>'
    assert entry not in before and page.count(entry) == 1
    assert page.replace(entry, "", 1).startswith(before[: before.rindex("</body>")])
    assert '<h2 id="section-regularization_search">Regularization search</h2>' in page
    assert page.count("data:image/png;base64,") > before.count("data:image/png;base64,")
    assert page.rstrip().endswith("</html>")


def test_cli_search_without_report_writes_only_its_files(tmp_path, monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    out = tmp_path / "search"
    argv = ["search", "--train-size", "300", "--epochs", "1", "--cv", "2", "--n-jobs", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["search.png", "search_results.csv"]


def test_cli_search_reports_an_unreachable_scheduler(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        status = cli.main(
            ["search", "--scheduler", "tcp://127.0.0.1:1", "--train-size", "300", "--out", str(tmp_path)]
        )
    assert status == 2
    assert "sk-mnist: error: Cannot connect to the Dask scheduler" in capsys.readouterr().err
