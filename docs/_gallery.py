"""The examples as the documentation's gallery runs them: small settings, seconds each.

tests/test_examples.py runs them with the same settings and checks what they print.
"""

import tempfile
from pathlib import Path

#: Each example's arguments: small subsets and few epochs. "{tmp}" stands for a
#: scratch folder, where the files an example writes go.
SMALL_RUNS = {
    "quickstart.py": ["--train-size", "1200", "--epochs", "2", "--plot", "{tmp}/quick.png"],
    "class_weights.py": ["--train-size", "1200", "--epochs", "2", "--rare", "10"],
    "monitoring.py": ["--train-size", "1200", "--epochs", "2", "--plot", "{tmp}/monitoring.png"],
    "distillation.py": ["--train-size", "1200", "--epochs", "2", "--plot", "{tmp}/distillation.png"],
    "semi_supervised.py": [
        "--train-size", "1200", "--labels", "100", "--epochs", "2", "--steps", "100", "--plot", "{tmp}/semi.png",
    ],
    "incremental_learning.py": [
        "--train-size", "600", "--epochs", "1", "--calls", "1", "--plot", "{tmp}/incremental.png",
    ],
    "grid_search_regularization.py": [
        "--train-size", "450", "--epochs", "1", "--n-jobs", "1", "--plot", "{tmp}/grid.png",
    ],
}  # fmt: skip


def small_run(name, tmp):
    """The arguments of example ``name``, its files written to the folder ``tmp``."""
    return [arg.format(tmp=tmp) for arg in SMALL_RUNS[name]]


def reset_argv(gallery_conf, script_vars):
    """sphinx-gallery's hook: the arguments an example runs with in the gallery."""
    return small_run(Path(script_vars["src_file"]).name, tempfile.mkdtemp(prefix="sk-mnist-gallery-"))
