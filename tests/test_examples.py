"""Every script in examples/ runs, on small settings, and prints its result."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Small settings per example, so that each runs in seconds.
ARGS = {
    "quickstart.py": (["--train-size", "600", "--epochs", "1"], "accuracy"),
    "monitoring.py": (["--train-size", "600", "--epochs", "1"], "alert"),
    "distillation.py": (["--train-size", "600", "--epochs", "1"], "student, labels only"),
    "incremental_learning.py": (
        ["--train-size", "600", "--epochs", "1", "--calls", "1"],
        "partial_fit 1    classes [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
    ),
    "grid_search_regularization.py": (
        ["--train-size", "450", "--epochs", "1", "--n-jobs", "1", "--plot", "{tmp}/grid.png"],
        "best:",
    ),
}


def test_every_example_is_exercised():
    assert sorted(ARGS) == sorted(path.name for path in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("name", sorted(ARGS))
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    args, expected = ARGS[name]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [name, *(arg.format(tmp=tmp_path) for arg in args)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert expected in capsys.readouterr().out.lower()
