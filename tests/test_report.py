"""The comparison, its statistics and the report files."""

import base64
import dataclasses
import json
import math
import pickle
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy import stats
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.ensemble import VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from sk_mnist.baselines import make_baseline
from sk_mnist.preprocessing import Deskewer, GlobalStandardizer, PixelScaler
from sk_mnist.report import (
    CLASSIC_RESULTS,
    RESULTS_SCHEMA,
    compare,
    count_parameters,
    mcnemar_test,
    proportion_interval,
    published_result,
    serialized_size,
    write_report,
)

# -- confidence intervals -------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "trials", "expected"),
    [
        # Worked by hand from the closed forms, z = 1.959964:
        # Wilson, 5 of 10: centre 0.5, half-width z / (n + z^2) * sqrt(k(n-k)/n + z^2/4).
        (5, 10, (0.236593, 0.763407)),
        # Wilson, 0 of 10: [0, z^2 / (n + z^2)]; 10 of 10 mirrors it.
        (0, 10, (0.0, 0.277533)),
        (10, 10, (0.722467, 1.0)),
    ],
)
def test_wilson_interval_matches_hand_computed_values(successes, trials, expected):
    assert proportion_interval(successes, trials) == pytest.approx(expected, abs=1e-6)


def test_exact_interval_matches_hand_computed_values():
    # Clopper-Pearson with no success: the upper bound solves (1 - p)^n = alpha / 2.
    assert proportion_interval(0, 10, method="exact") == pytest.approx((0.0, 1 - 0.025 ** (1 / 10)))
    assert proportion_interval(10, 10, method="exact") == pytest.approx((0.025 ** (1 / 10), 1.0))


@pytest.mark.parametrize("method", ["wilson", "exact"])
@pytest.mark.parametrize(("successes", "trials"), [(1, 7), (81, 263), (9837, 10000), (9999, 10000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_intervals_match_scipy(method, successes, trials, confidence):
    expected = stats.binomtest(successes, trials).proportion_ci(confidence, method=method)
    assert proportion_interval(successes, trials, confidence, method) == pytest.approx(
        (expected.low, expected.high), rel=1e-9
    )


def test_exact_interval_is_wider_than_wilson():
    wilson, exact = proportion_interval(9837, 10000), proportion_interval(9837, 10000, method="exact")
    assert exact[0] < wilson[0] < 0.9837 < wilson[1] < exact[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((11, 10), r"^Need successes <= trials; got 11 of 10\.$"),
        ((0, 0), r"^The 'trials' parameter of proportion_interval must be an int in the range \[1, inf\)"),
        (
            (-1, 10),
            r"^The 'successes' parameter of proportion_interval must be an int in the range \[0, inf\)",
        ),
        ((9.0, 10), r"^The 'successes' parameter of proportion_interval must be an int"),
        (
            (1, 10, 1.5),
            r"^The 'confidence' parameter of proportion_interval must be a float in the range \(0\.0, 1\.0\)",
        ),
        ((1, 10, 0.95, "agresti"), r"^The 'method' parameter of proportion_interval must be a str among"),
    ],
)
def test_interval_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        proportion_interval(*args)


@pytest.mark.parametrize("method", ["wilson", "exact"])
def test_interval_accepts_a_single_trial(method):
    # One trial is the least the contract allows. Wilson, 1 of 1: the lower
    # bound is n / (n + z^2) = 1 / (1 + 1.959964^2); 0 of 1 mirrors it.
    # Clopper-Pearson, 1 of 1: the lower bound solves p^1 = alpha / 2.
    expected = {"wilson": 1 / (1 + 1.959964**2), "exact": 0.025}[method]
    assert proportion_interval(1, 1, method=method) == pytest.approx((expected, 1.0), abs=1e-6)
    assert proportion_interval(0, 1, method=method) == pytest.approx((0.0, 1 - expected), abs=1e-6)


@pytest.mark.parametrize("confidence", [0, 0.0, 1, 1.0, -0.5])
def test_interval_rejects_a_confidence_outside_the_open_unit_interval(confidence):
    # 0 would give a zero-width interval and 1 an infinite z: both are refused.
    message = (
        "The 'confidence' parameter of proportion_interval must be a float in the range (0.0, 1.0). "
        f"Got {confidence!r} instead."
    )
    for method in ("wilson", "exact"):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            proportion_interval(5, 10, confidence, method)


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_stays_within_the_unit_interval(confidence):
    # With no failure the Wilson upper bound is 1, with no success the lower
    # bound 0 (the closed form gives (n + z^2) / (n + z^2) and 0); rounding
    # must not push them past the documented [0, 1].
    for trials in range(1, 200):
        low, high = proportion_interval(0, trials, confidence)
        assert 0.0 <= low <= 1e-12 and high <= 1.0
        low, high = proportion_interval(trials, trials, confidence)
        assert 0.0 <= low and 1 - 1e-12 <= high <= 1.0


# -- McNemar's test -------------------------------------------------------------


def predictions_with(only_a, only_b, both=50, neither=10):
    """Labels and two classifiers' predictions with the given agreement counts."""
    n = only_a + only_b + both + neither
    y = np.zeros(n, dtype=int)
    a, b = y.copy(), y.copy()
    a[only_a + both : only_a + both + only_b + neither] = 1  # A wrong on "only B" and "neither"
    b[:only_a] = 1  # B wrong on "only A"
    b[only_a + both + only_b :] = 1  # and on "neither"
    return y, a, b


def test_predictions_helper_builds_the_asked_counts():
    y, a, b = predictions_with(7, 3, both=20, neither=4)
    assert np.sum((a == y) & (b != y)) == 7 and np.sum((a != y) & (b == y)) == 3
    assert np.sum((a == y) & (b == y)) == 20 and np.sum((a != y) & (b != y)) == 4


def test_mcnemar_exact_by_hand():
    # b = 4, c = 1: p = 2 * P(Binomial(5, 1/2) <= 1) = 2 * (1 + 5) / 32.
    result = mcnemar_test(*predictions_with(4, 1))
    assert (result.only_a_correct, result.only_b_correct, result.exact) == (4, 1, True)
    assert result.statistic == 1
    assert result.pvalue == pytest.approx(0.375)


@pytest.mark.parametrize(("b", "c"), [(0, 3), (10, 2), (12, 12), (3, 20), (40, 70)])
def test_mcnemar_exact_matches_scipy_binomtest(b, c):
    result = mcnemar_test(*predictions_with(b, c), exact=True)
    assert result.pvalue == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-12)


def test_mcnemar_chi_square_by_hand():
    # b = 30, c = 10: (|30 - 10| - 1)^2 / 40 = 9.025; with one degree of
    # freedom the chi-square tail is erfc(sqrt(x / 2)).
    result = mcnemar_test(*predictions_with(30, 10))
    assert not result.exact
    assert result.statistic == pytest.approx(9.025)
    assert result.pvalue == pytest.approx(math.erfc(math.sqrt(9.025 / 2)), rel=1e-12)


def test_mcnemar_is_exact_below_25_discordant_samples():
    assert mcnemar_test(*predictions_with(20, 4)).exact is True
    assert mcnemar_test(*predictions_with(20, 5)).exact is False
    assert mcnemar_test(*predictions_with(20, 4), exact=False).exact is False
    assert mcnemar_test(*predictions_with(20, 5), exact=True).exact is True


@pytest.mark.parametrize(("exact", "expected"), [("auto", True), (True, True), (False, False)])
def test_mcnemar_without_disagreement_has_pvalue_one(exact, expected):
    result = mcnemar_test(*predictions_with(0, 0), exact=exact)
    assert tuple(result) == (0, 0, 0.0, 1.0, expected)
    assert result.exact is expected


def test_mcnemar_balanced_disagreement_has_pvalue_one():
    # b = c: the exact statistic is min(b, c) = b, the chi-square one 0 (no
    # continuity correction), and both p-values are 1.
    assert tuple(mcnemar_test(*predictions_with(3, 3))) == (3, 3, 3.0, 1.0, True)
    assert tuple(mcnemar_test(*predictions_with(30, 30))) == (30, 30, 0.0, 1.0, False)


def test_mcnemar_is_symmetric():
    y, a, b = predictions_with(35, 12)
    forward, backward = mcnemar_test(y, a, b), mcnemar_test(y, b, a)
    assert forward.pvalue == backward.pvalue
    assert (forward.only_a_correct, forward.only_b_correct) == (
        backward.only_b_correct,
        backward.only_a_correct,
    )


def test_mcnemar_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one length"):
        mcnemar_test([0, 1], [0, 1], [0])


# -- classic results --------------------------------------------------------------


def test_classic_table_holds_the_reference_errors():
    errors = {result.method: result.test_error for result in CLASSIC_RESULTS}
    assert errors == {
        "linear classifier (1-layer NN)": 12.0,
        "linear classifier (1-layer NN), deskewed": 8.4,
        "k-NN, Euclidean (L2)": 5.0,
        "k-NN, Euclidean (L2), deskewed": 2.4,
        "SVM, Gaussian kernel": 1.4,
        "2-layer NN, 300 hidden units": 4.7,
        "LeNet-5": 0.95,
        "LeNet-5 with distortions": 0.8,
        "committee of 35 CNNs, elastic distortions": 0.23,
        "simple CNN, final epoch, mean of 30 seeds": 0.30,
        "ensemble of 15 CNNs, mean of 100 runs": 0.255,
        "deep CNN, frontier recipe, mean of 5 seeds": 0.296,
        "5 deep CNNs, frontier recipe, soft vote": 0.26,
    }


def test_frontier_rows_are_the_figures_of_docs_benchmarks():
    # The report's frontier rows restate docs/benchmarks.md's figures of record;
    # a new run there must update them here.
    docs = (Path(__file__).parents[1] / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    section = docs.split("## The frontier recipe", 1)[1].split("\n## ", 1)[0]
    mean = re.search(r"^\| mean, sd \(range\) \|[^*]*\*\*(\d+\.\d+)%\*\*", section, re.MULTILINE)
    vote = re.search(r"^\| soft vote of the 5 models \|[^*]*\*\*(\d+\.\d+)%\*\*", section, re.MULTILINE)
    errors = {
        result.method: result.test_error for result in CLASSIC_RESULTS if result.source.startswith("sk_mnist")
    }
    assert errors == {
        "deep CNN, frontier recipe, mean of 5 seeds": round(100 - float(mean[1]), 3),
        "5 deep CNNs, frontier recipe, soft vote": round(100 - float(vote[1]), 3),
    }


def test_baselines_are_matched_with_their_published_counterparts():
    assert published_result("logistic").test_error == 12.0
    assert published_result("logistic+deskew").test_error == 8.4
    assert published_result("rbf_svm").test_error == published_result("rbf_svm_pca").test_error == 1.4
    assert published_result("cnn_ensemble").test_error == 0.23
    assert published_result("random_forest") is None
    assert published_result("mlp+deskew") is None  # no deskewed figure was published
    assert published_result("my model") is None


# -- compare ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(mnist_train, mnist_test):
    (X, y), (X_test, y_test) = mnist_train, mnist_test
    return X[:800], y[:800], X_test[:300], y_test[:300]


@pytest.fixture(scope="module")
def models():
    return {
        "logistic": make_baseline("logistic"),
        "knn+deskew": make_baseline("knn", deskew=True),
        "cnn": make_baseline("cnn", max_epochs=2, random_state=0),
    }


@pytest.fixture(scope="module")
def comparison(models, data):
    return compare(models, *data, train_sizes={"knn+deskew": 500})


def test_compare_leaves_the_given_models_unfitted(models, comparison):
    assert all(not hasattr(model[-1], "classes_") for model in models.values())
    assert list(comparison.estimators) == list(models)
    assert all(hasattr(model[-1], "classes_") for model in comparison.estimators.values())


def test_a_comparison_shows_as_its_table(comparison, data):
    _, _, _, y_test = data
    title = f"Comparison of 3 models on {len(y_test):,} test images"
    assert repr(comparison) == f"{title}:\n{comparison.table.to_string()}"
    html = comparison._repr_html_()
    assert html == f"<p>{title}</p>\n{comparison.table.to_html()}"
    assert html.count("<tr>") == 1 + 3  # the header and one row per model


def test_compare_table_is_consistent_with_the_predictions(comparison, data):
    _, _, X_test, y_test = data
    table = comparison.table
    assert list(table.index) == ["logistic", "knn+deskew", "cnn"]
    assert list(table["train_size"]) == [800, 500, 800]
    assert comparison.estimators["knn+deskew"][-1].n_samples_fit_ == 500
    for name, model in comparison.estimators.items():
        y_pred = model.predict(X_test)
        np.testing.assert_array_equal(comparison.predictions[name], y_pred)
        row = table.loc[name]
        assert row["n_errors"] == np.sum(y_pred != y_test)
        assert row["accuracy"] == pytest.approx(model.score(X_test, y_test))
        assert row["ci_low"] < row["accuracy"] < row["ci_high"]
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(
            proportion_interval(300 - int(row["n_errors"]), 300)
        )
        assert row["fit_time"] > 0 and row["predict_time"] > 0
        assert row["throughput"] == pytest.approx(300 / row["predict_time"])
        assert row["model_size"] == len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    assert table.loc["logistic", "n_parameters"] == 784 * 10 + 10
    assert table.loc["cnn", "n_parameters"] == sum(
        p.numel() for p in comparison.estimators["cnn"][-1].module_.parameters()
    )
    assert table["n_parameters"].isna()["knn+deskew"]


def test_compare_confusion_recall_and_mcnemar(comparison, data):
    y_test = data[3]
    np.testing.assert_array_equal(comparison.classes, np.arange(10))
    for name, matrix in comparison.confusion_matrices.items():
        assert matrix.sum() == len(y_test)
        assert np.trace(matrix) == len(y_test) - comparison.table.loc[name, "n_errors"]
        np.testing.assert_allclose(
            comparison.per_class_recall.loc[name], np.diag(matrix) / np.bincount(y_test, minlength=10)
        )
    assert [tuple(pair) for pair in comparison.mcnemar[["model_a", "model_b"]].to_numpy()] == [
        ("logistic", "knn+deskew"),
        ("logistic", "cnn"),
        ("knn+deskew", "cnn"),
    ]
    row = comparison.mcnemar.iloc[0]
    expected = mcnemar_test(y_test, comparison.predictions["logistic"], comparison.predictions["knn+deskew"])
    assert (row["only_a_correct"], row["only_b_correct"], row["pvalue"]) == expected[:2] + (expected.pvalue,)


def test_compare_keeps_the_cnn_history(comparison):
    assert list(comparison.histories) == ["cnn"]
    (epochs,) = comparison.histories["cnn"]
    assert list(epochs.index) == [1, 2]
    assert list(epochs.columns) == ["train_loss", "valid_loss", "valid_acc", "dur"]
    net = comparison.estimators["cnn"][-1]
    assert list(epochs["train_loss"]) == list(net.history_[:, "train_loss"])
    # The default recipe holds out no validation split: those columns are empty.
    assert epochs[["valid_loss", "valid_acc"]].isna().all().all()


def test_compare_records_fit_warnings(data):
    result = compare({"stopped early": make_baseline("logistic", max_iter=2)}, *data)
    assert any("ConvergenceWarning" in message for message in result.fit_warnings["stopped early"])
    with pytest.warns(ConvergenceWarning):  # the caller's warning filters are restored
        make_baseline("logistic", max_iter=2).fit(*data[:2])


def test_compare_shows_progress_and_leaves_picklable_models(data, capsys):
    models = {"cnn": make_baseline("cnn", max_epochs=1, random_state=0)}
    result = compare(models, *data, train_sizes=300, progress=True)
    err = capsys.readouterr().err
    assert "models" in err and "epoch" in err
    assert (
        pickle.loads(pickle.dumps(result.estimators["cnn"])).score(*data[2:])
        == result.table.loc["cnn", "accuracy"]
    )


@pytest.mark.parametrize(
    ("train_sizes", "message"), [({"nope": 10}, "not compared"), (801, "between 1 and 800"), (0, "between 1")]
)
def test_compare_rejects_bad_train_sizes(data, train_sizes, message):
    with pytest.raises(ValueError, match=message):
        compare({"logistic": LogisticRegression()}, *data, train_sizes=train_sizes)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a few iterations suffice here
def test_count_parameters_where_defined(data):
    X, y = data[0][:300] / 255, data[1][:300]
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5).fit(X, y)
    assert count_parameters(mlp) == 784 * 16 + 16 + 16 * 10 + 10
    pca = make_pipeline(PixelScaler(), PCA(n_components=5)).fit(X)
    assert count_parameters(pca) == 5 * 784 + 784
    voting = VotingClassifier([("a", LogisticRegression(max_iter=5)), ("b", clone(mlp))]).fit(X, y)
    assert count_parameters(voting) == 7850 + count_parameters(mlp)
    assert count_parameters(make_pipeline(PCA(n_components=5), SVC()).fit(X, y)) is None
    # The package's pixel transformers learn no weights, all three of them.
    for transformer in (PixelScaler(), GlobalStandardizer(), Deskewer()):
        logistic = make_pipeline(transformer, LogisticRegression(max_iter=5)).fit(X, y)
        assert count_parameters(logistic) == 7850


def test_serialized_size_counts_pickled_bytes():
    value = {"weights": np.arange(1000.0)}
    assert serialized_size(value) == len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


# -- the report files ---------------------------------------------------------------


class _Links(HTMLParser):
    """Collects every tag and every attribute that can load something."""

    def __init__(self):
        super().__init__()
        self.tags, self.loads, self.fragments, self.ids = [], [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "href" and value.startswith("#"):  # a place in the page: loads nothing
                self.fragments.append(value[1:])
            elif name in ("src", "href", "srcset", "data"):
                self.loads.append((tag, name, value))
            elif name == "id":
                self.ids.add(value)


@pytest.fixture(scope="module")
def report(comparison, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    return write_report(comparison, folder, title="Test report", notes=["A note."])


def test_report_writes_every_file(report):
    names = {path.name for path in report.parent.iterdir()}
    assert names == {
        "report.md",
        "report.html",
        "results.json",
        "accuracy_vs_fit_time.png",
        "confused_pairs.png",
        "misclassified.png",
        "learning_curves.png",
        "confusion_logistic.png",
        "confusion_knn_deskew.png",
        "confusion_cnn.png",
    }
    for png in report.parent.glob("*.png"):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_report_html_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(text)
    assert "link" not in parser.tags and "script" not in parser.tags and "iframe" not in parser.tags
    assert all(name == "src" and tag == "img" for tag, name, _ in parser.loads)
    assert not re.search(r"url\(|@import", text)  # nothing loaded from the style sheet either
    # Each figure is embedded, byte for byte.
    embedded = sorted(
        base64.b64decode(value.removeprefix("data:image/png;base64,")) for _, _, value in parser.loads
    )
    on_disk = sorted(png.read_bytes() for png in report.parent.glob("*.png"))
    assert all(value.startswith("data:image/png;base64,") for _, _, value in parser.loads)
    assert embedded == on_disk
    assert "Test report" in text and "A note." in text and "knn+deskew" in text


def test_report_html_has_contents_that_resolve_and_figures_that_enlarge(report):
    parser = _Links()
    parser.feed(report.read_text(encoding="utf-8"))
    # Every in-page link leads somewhere ("_" is the figure's close link, leading to no figure).
    assert {fragment for fragment in parser.fragments if fragment != "_"} <= parser.ids
    headings = re.findall(r'<h2 id="([^"]+)">([^<]+)</h2>', report.read_text(encoding="utf-8"))
    contents = re.search(r'<nav class="toc">.*?</nav>', report.read_text(encoding="utf-8"), re.DOTALL)[0]
    assert re.findall(r'<a href="#([^"]+)">([^<]+)</a>', contents) == headings
    assert [name for _, name in headings][:2] == ["Results", "Classic and frontier results"]
    figures = re.findall(r'<figure id="([^"]+)">', report.read_text(encoding="utf-8"))
    assert len(figures) == len(list(report.parent.glob("*.png"))) and set(figures) <= set(parser.fragments)


def test_wide_tables_scroll_in_their_box_and_missing_values_are_centred(report):
    text = report.read_text(encoding="utf-8")
    assert text.count('<div class="table-wrap"><table>') == text.count("<table>") > 0
    assert '<td class="missing">–</td>' in text and '<td class="num">–</td>' not in text
    assert ".table-wrap { overflow-x: auto;" in text


def test_report_markdown_shows_the_tables_and_links_the_figures(report, comparison):
    text = (report.parent / "report.md").read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(linked) == sorted(png.name for png in report.parent.glob("*.png"))
    accuracy = 100 * comparison.table.loc["cnn", "accuracy"]
    assert re.search(rf"^\| cnn \| 800 \| {accuracy:.2f} \|", text, re.MULTILINE)
    # Error rates with two decimals, or three where the source gives three.
    assert "| LeNet-5 with distortions | 0.80 | LeCun et al. 1998 |" in text
    assert "| ensemble of 15 CNNs, mean of 100 runs | 0.255 | Deotte, Kaggle 2018 |" in text
    assert "## Pairwise McNemar tests" in text and "## Learning curves" in text


def test_results_json_matches_the_schema_and_the_comparison(report, comparison):
    results = json.loads((report.parent / "results.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(RESULTS_SCHEMA)
    jsonschema.validate(results, RESULTS_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert results["schema_version"] == 1 and results["notes"] == ["A note."]
    by_name = {model["name"]: model for model in results["models"]}
    assert list(by_name) == list(comparison.table.index)
    assert by_name["cnn"]["accuracy"] == comparison.table.loc["cnn", "accuracy"]
    assert by_name["knn+deskew"]["n_parameters"] is None
    assert by_name["knn+deskew"]["published"]["test_error"] == 2.4
    assert by_name["logistic"]["confusion_matrix"] == comparison.confusion_matrices["logistic"].tolist()
    assert len(by_name["cnn"]["histories"][0]) == 2 and by_name["logistic"]["histories"] == []
    assert len(results["mcnemar"]) == 3
    assert all((report.parent / name).is_file() for name in results["figures"].values())


def test_results_schema_rejects_drift(report):
    results = json.loads((report.parent / "results.json").read_text(encoding="utf-8"))
    for broken in (
        {**results, "schema_version": 2},
        {**results, "extra": 1},
        {**results, "models": [{**results["models"][0], "accuracy": 1.5}]},
        {key: value for key, value in results.items() if key != "mcnemar"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, RESULTS_SCHEMA)


def test_a_report_that_fails_midway_leaves_every_file_whole(comparison, tmp_path, monkeypatch):
    import os

    from sk_mnist.report import _writers

    write_report(comparison, tmp_path, title="Before")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def broken(*args):
        raise RuntimeError("failed while composing")

    # Composing fails after the figures are drawn: no file is touched. (Another
    # confidence redraws the accuracy figure, so that an early write would show.)
    changed = dataclasses.replace(comparison, confidence=0.9)
    with monkeypatch.context() as patch:
        patch.setattr(_writers, "_results", broken)
        with pytest.raises(RuntimeError, match="failed while composing"):
            write_report(changed, tmp_path, title="After")
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before

    # The disk fails at the last file: it keeps its old content, the others are whole and new.
    replace = os.replace

    def full_disk(source, target):
        if str(target).endswith("results.json"):
            raise OSError("No space left on device")
        replace(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", full_disk)
        with pytest.raises(OSError, match="No space left on device"):
            write_report(comparison, tmp_path, title="After")
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert set(after) == set(before)  # no temporary file left behind
    assert after["results.json"] == before["results.json"]
    assert b"<title>After</title>" in after["report.html"] and after["report.md"].startswith(b"# After")


def test_the_learning_curves_caption_says_why_validation_loss_can_be_lower(report):
    text = report.with_name("report.md").read_text(encoding="utf-8")
    assert "Validation loss can lie below training loss: the training images are randomly rotated" in text


def test_the_reports_confusion_matrices_share_one_colour_scale(comparison):
    from sk_mnist.report._plots import error_scale, plot_confusion_matrix

    largest = max(
        int(count)
        for matrix in comparison.confusion_matrices.values()
        for (row, col), count in np.ndenumerate(matrix)
        if row != col
    )
    assert error_scale(comparison) == largest
    for name in comparison.confusion_matrices:
        (ax, _) = plot_confusion_matrix(comparison, name, error_scale(comparison)).axes  # matrix, colour bar
        assert ax.images[0].get_clim() == (0, largest)
        assert ax.get_title().startswith(f"{name}: ")


def test_learning_curves_show_validation_only_where_a_fit_held_it_out(comparison):
    from types import SimpleNamespace

    from sk_mnist.report._plots import plot_learning_curves

    (epochs,) = comparison.histories["cnn"]
    fig = plot_learning_curves(comparison)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1  # the training loss alone
    validated = epochs.assign(valid_loss=[0.5, 0.4], valid_acc=[0.9, 0.95])
    fig = plot_learning_curves(SimpleNamespace(histories={"cnn": [validated]}))
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2
    np.testing.assert_array_equal(acc_ax.lines[0].get_ydata(), [90.0, 95.0])
