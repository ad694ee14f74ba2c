"""The benchmark scripts' shared parameter sets and ``--param NAME=VALUE`` option, and their saved models."""

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


@pytest.mark.parametrize("name", sorted(_params.MEMBERS))
def test_member_params_build_networks_of_their_config(name):
    from sk_mnist import MNISTCNNClassifier
    from sk_mnist.modules import ARCHITECTURES

    config = _params.CONFIGS[name]
    assert len(_params.MEMBERS[name]) > 1
    for member in _params.MEMBERS[name]:
        clf = MNISTCNNClassifier(**{**config, **member})
        clf._validate_hyperparameters()
        routed = {
            key.removeprefix("module__"): value for key, value in member.items() if key.startswith("module__")
        }
        ARCHITECTURES[config["architecture"]](**routed)


def test_a_saved_model_is_reused_only_for_the_parameters_it_was_fitted_with(tmp_path, monkeypatch, capsys):
    from sklearn.datasets import load_digits

    import sk_mnist
    from sk_mnist import MNISTCNNClassifier

    monkeypatch.syspath_prepend(str(_PATH.parent))
    bench_accuracy = importlib.import_module("bench_accuracy")
    X, y = load_digits(return_X_y=True)
    params = dict(architecture="deep", module__kernel_sizes=(3, 3, 3), max_epochs=1, random_state=0)
    path = tmp_path / "model.skm"
    sk_mnist.save(MNISTCNNClassifier(**params).fit(X[:100], y[:100]), path)
    parser = argparse.ArgumentParser(prog="bench_accuracy.py")
    # How the saved model predicted does not matter: the run sets it.
    again = bench_accuracy.loaded(path, MNISTCNNClassifier(**params, test_time_augmentation=True), parser)
    assert again.get_params()["module__kernel_sizes"] == (3, 3, 3)
    default_kernels = {name: value for name, value in params.items() if name != "module__kernel_sizes"}
    for name, other in [
        ("module__kernel_sizes", {**params, "module__kernel_sizes": (5, 3, 3)}),
        ("module__kernel_sizes", default_kernels),  # not set: the network's own default
        ("random_state", {**params, "random_state": 1}),
        ("max_epochs", {**params, "max_epochs": 2}),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            bench_accuracy.loaded(path, MNISTCNNClassifier(**other), parser)
        assert exit_info.value.code == 2
        assert f"model.skm was fitted with other {name} than this run's" in capsys.readouterr().err
