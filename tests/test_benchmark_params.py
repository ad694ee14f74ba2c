"""The ``--param NAME=VALUE`` option shared by the benchmark scripts."""

import argparse
import importlib.util
import re
from pathlib import Path

import pytest
import torch

_PATH = Path(__file__).parents[1] / "benchmarks" / "_params.py"
_spec = importlib.util.spec_from_file_location("_params", _PATH)
_params = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_params)


def parse(*argv):
    parser = argparse.ArgumentParser(exit_on_error=False)
    _params.add_param_option(parser, "a parameter")
    return dict(parser.parse_args(argv).param)


def test_values_are_literals_or_torch_optimizers():
    got = parse(
        "--param", "max_epochs=20",
        "--param", "module__widths=(8, 16)",
        "--param", "early_stopping=False",
        "--param", "optimizer=torch.optim.AdamW",
        "--param", "max_epochs=30",
    )  # fmt: skip
    assert got == {
        "max_epochs": 30,  # the last of a name wins
        "module__widths": (8, 16),
        "early_stopping": False,
        "optimizer": torch.optim.AdamW,
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("max_epochs", "expected NAME=VALUE"),
        ("=3", "expected NAME=VALUE"),
        ("optimizer=torch.optim.Nope", "torch.optim has no optimizer 'Nope'"),
        ("scheduler=torch.optim.lr_scheduler", "no optimizer 'lr_scheduler'"),
        ("lr=fast", "'lr=fast'"),
        ("widths=(8,", "'widths=(8,'"),
    ],
)
def test_malformed_items_are_refused_with_the_item_named(item, message):
    with pytest.raises(argparse.ArgumentError, match=re.escape(message)):
        parse("--param", item)


@pytest.mark.parametrize("name", sorted(_params.CONFIGS))
def test_documented_configs_are_valid_parameters(name):
    # docs/benchmarks.md quotes these sets as parameters a user can copy.
    from sk_mnist import MNISTCNNClassifier

    clf = MNISTCNNClassifier(**_params.CONFIGS[name])
    clf._validate_hyperparameters()
    assert {key: clf.get_params()[key] for key in _params.CONFIGS[name]} == _params.CONFIGS[name]
