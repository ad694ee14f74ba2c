"""Every script in examples/ runs, on small settings, and what it prints holds up."""

import ast
import re
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES.parent / "docs"))
from _gallery import SMALL_RUNS, small_run  # noqa: E402


def check_quickstart(out, tmp_path):
    trained = re.search(r"trained on (\d+) images in [\d.]+ s \((\d+) epochs\)", out)
    assert trained and int(trained[1]) == 1200 and 1 <= int(trained[2]) <= 2
    scored = re.search(r"test accuracy: (0\.\d{4}) \((\d+) errors in 10000\)", out)
    assert scored, out
    accuracy, errors = float(scored[1]), int(scored[2])
    assert round(accuracy * 10000) + errors == 10000  # the errors are those of the accuracy
    # Chance is 0.1; two epochs on 1,200 images reach 0.88 and 0.89 (seeds 0 and 1): a
    # network that does not learn stays far below 0.7.
    assert accuracy > 0.7
    assert out.splitlines()[-1] == f"figure saved to {tmp_path}/quick.png"
    assert (tmp_path / "quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_monitoring(out, tmp_path):
    # The example's claim: the clean stream raises no alert; the rotated and
    # noisy ones do, with labels (the accuracy drops) and without.
    baseline = re.search(r"baseline: accuracy (0\.\d+), mean confidence (0\.\d+) on 2000", out)
    assert baseline, out
    # A model that learnt (0.85 and 0.86 at seeds 0 and 1), so that drift has something to break.
    assert float(baseline[1]) > 0.7
    blocks = out.split("\n\n")
    assert blocks[-1].strip() == f"timeline saved to {tmp_path}/monitoring.png"
    assert (tmp_path / "monitoring.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reports = {}
    for block in blocks[1:-1]:
        title, *lines = block.strip().splitlines()
        stream, labels = re.fullmatch(r"(\w+) digits, (with|without) labels:", title).groups()
        reports[stream, labels == "with"] = dict(line.split(None, 1) for line in lines)
    assert set(reports) == {
        (s, labelled) for s in ("clean", "rotated", "noisy") for labelled in (True, False)
    }
    for (stream, labelled), report in reports.items():
        alerts = ast.literal_eval(report["active_alerts"])
        assert int(report["n_samples"]) == 2000 and int(report["n_labelled"]) == 2000 * labelled
        if stream == "clean":
            assert int(report["n_alerts"]) == 0 and alerts == [], (stream, labelled, report)
        else:
            assert int(report["n_alerts"]) >= 1 and "class_distribution" in alerts, (stream, labelled, report)
            if labelled:
                assert "accuracy" in alerts
                assert float(report["accuracy"]) < float(report["baseline_accuracy"]) - 0.02


def check_distillation(out, tmp_path):
    *table, saved = out.splitlines()
    assert saved == f"figure saved to {tmp_path}/distillation.png"
    assert (tmp_path / "distillation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {}
    for line in table[1:]:
        name, parameters, _, accuracy = re.fullmatch(r"(.+?)\s+([\d,]+)\s+(\d+)s\s+([\d.]+)%", line).groups()
        rows[name] = int(parameters.replace(",", "")), float(accuracy) / 100
    assert list(rows) == ["teacher (deep)", "student, distilled", "student, labels only"]
    (teacher, _), (distilled, _), (alone, alone_accuracy) = rows.values()
    # The same student network both ways, a small fraction of the teacher (83% fewer parameters).
    assert distilled == alone and alone < 0.2 * teacher
    assert all(0 <= accuracy <= 1 for _, accuracy in rows.values())
    # At two epochs on 1,200 images only the labels-only student is past the
    # noise (71% to 77% over seeds 0-2; the deep teacher and its student
    # reach 19% to 47%): chance is 10%.
    assert alone_accuracy > 0.5


def check_semi_supervised(out, tmp_path):
    counts, header, *rows, saved = out.splitlines()
    assert counts == "100 labelled images, 1100 unlabelled"
    assert saved == f"figure saved to {tmp_path}/semi.png"
    assert (tmp_path / "semi.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    accuracies = {}
    for line in rows:
        name, accuracy = re.fullmatch(r"(.+?)\s+(?:\d+s)?\s+([\d.]+)%", line).groups()
        accuracies[name] = float(accuracy) / 100
    assert list(accuracies) == ["student, labels only", "teacher", "student, distilled"]
    # 100 labels, 100 steps: every model past chance (10%) by far.
    assert all(accuracy > 0.4 for accuracy in accuracies.values())


def check_incremental_learning(out, tmp_path):
    assert "partial_fit 1    classes [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in out
    assert out.splitlines()[-1] == f"figure saved to {tmp_path}/incremental.png"
    assert (tmp_path / "incremental.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_grid_search(out, tmp_path):
    lines = out.splitlines()
    assert re.fullmatch(r"searched 16 candidates in \d+ s", lines[0])
    header = lines[2].split()
    assert lines[3].split() == ["candidate"]
    table = [dict(zip(header, line.split()[1:])) for line in lines[4:20]]
    assert lines[20] == "" and len(table) == 16
    # Ranked by mean accuracy: the ranks climb as the scores fall.
    ranks = [int(row["rank_test_score"]) for row in table]
    scores = [float(row["mean_test_score"]) for row in table]
    assert ranks[0] == 1 and ranks == sorted(ranks) and scores == sorted(scores, reverse=True)
    # The best candidate printed is the top row, with its score.
    best = re.fullmatch(r"best: (\{.*\}), mean CV accuracy ([\d.]+)%", lines[21])
    assert best, lines[21]
    params = {key: ast.literal_eval(value) for key, value in table[0].items() if key.startswith("cnn__")}
    assert ast.literal_eval(best[1]) == params and len(params) == 4
    assert float(best[2]) / 100 == pytest.approx(scores[0], abs=1e-4)
    assert lines[22] == f"heatmap saved to {tmp_path}/grid.png"
    assert (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def check_class_weights(out, tmp_path):
    lines = out.splitlines()
    header = re.fullmatch(
        r"training set: ([\d,]+) images, (\d+) of them 3s; 'balanced' weighs a 3 ([\d.]+) times an average other digit",
        lines[0],
    )
    assert header and int(header[2]) == 10, lines[0]
    # 10 threes among 1,089 other digits in nine classes: 12.1 times.
    assert 11 < float(header[3]) < 13
    rows = {}
    for line in lines[3:5]:
        name, *figures = line.split()
        rows[name] = [float(figure.rstrip("%")) / 100 for figure in figures]
    assert list(rows) == ["None", "balanced"]
    # Two epochs on 1,100 images learn (74% to 87% at seeds 0-2, chance is 10%);
    # unweighted, the rare 3 is never predicted (recall 0% at seeds 0-2),
    # weighted it is (recall 41% to 95%).
    assert all(accuracy > 0.6 for accuracy, _, _ in rows.values())
    assert rows["balanced"][1] > rows["None"][1] + 0.2
    cv = re.fullmatch(
        r"weighted 3-fold accuracy, sample weights routed through the Pipeline: ([\d.]+)%", lines[6]
    )
    # 48% to 58% at seeds 0-2: two epochs on folds of 733 images.
    assert cv and 30 < float(cv[1]) <= 100, lines[6]


# The check of what each example prints, run with the gallery's small settings.
CHECKS = {
    "quickstart.py": check_quickstart,
    "class_weights.py": check_class_weights,
    "monitoring.py": check_monitoring,
    "distillation.py": check_distillation,
    "semi_supervised.py": check_semi_supervised,
    "incremental_learning.py": check_incremental_learning,
    "grid_search_regularization.py": check_grid_search,
}


def test_every_example_is_exercised():
    examples = sorted(path.name for path in EXAMPLES.glob("*.py"))
    assert sorted(CHECKS) == sorted(SMALL_RUNS) == examples


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name, *small_run(name, tmp_path)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    CHECKS[name](capsys.readouterr().out, tmp_path)
