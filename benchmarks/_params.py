"""What the benchmark scripts share: the documented parameter sets and ``--param NAME=VALUE``."""

import argparse
import ast

import torch


def param(item):
    """Parse ``NAME=VALUE`` into ``(name, value)``, an argparse ``type``.

    The value is a Python literal (``20``, ``0.1``, ``(8, 16)``, ``False``) or
    names one of torch's optimizers (``torch.optim.AdamW``).
    """
    name, sep, text = item.partition("=")
    if not (sep and name):
        raise argparse.ArgumentTypeError(f"{item!r}: expected NAME=VALUE")
    optimizer = text.removeprefix("torch.optim.")
    if optimizer != text:
        cls = getattr(torch.optim, optimizer, None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise argparse.ArgumentTypeError(f"{item!r}: torch.optim has no optimizer {optimizer!r}")
        return name, cls
    try:
        return name, ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(
            f"{item!r}: the value is not a Python literal (quote strings: name='text')"
        ) from None


def add_param_option(parser, what):
    """Add the repeatable ``--param NAME=VALUE``; ``dict(args.param)`` holds them."""
    parser.add_argument("--param", type=param, action="append", default=[], metavar="NAME=VALUE", help=what)


#: The parameter sets of docs/benchmarks.md, on top of ``MNISTCNNClassifier``'s defaults.
CONFIGS = {
    "default": {},
    # The documented fast setting: the default recipe over half the epochs.
    "fast": {"max_epochs": 6},
    # The classic LeNet (LeCun et al. 1998), trained by the estimator's schedule in float32.
    "classic": {
        "architecture": "lenet",
        "batch_norm": False,
        "dropout": 0.5,
        "augment": False,
        "label_smoothing": 0.0,
        "weight_decay": 0.0,
        "precision": "float32",
    },
    # The strongest recipe: the deep network with decoupled weight decay.
    "deep": {"architecture": "deep", "optimizer": torch.optim.AdamW, "weight_decay": 0.01},
    # The deep recipe over the longest schedule that fits ten minutes of fit on
    # two cores (its epochs take about 16 s there), transforming half of the
    # training images in each epoch and predicting with test-time augmentation;
    # each choice made on a held-out split, before any test score.
    "frontier": {
        "architecture": "deep",
        "optimizer": torch.optim.AdamW,
        "weight_decay": 0.01,
        "max_epochs": 30,
        "augment": 0.5,
        "test_time_augmentation": True,
    },
}
# The frontier recipe whose members also differ in the kernels of their
# convolutions (DeepCNN's kernel_sizes), as in An et al. 2020's heterogeneous
# committees; see MEMBERS. Measured against the frontier recipe of the time,
# which transformed every training image.
CONFIGS["frontier-mixed"] = {**CONFIGS["frontier"], "augment": True}

#: Per-member parameters of the configs whose members differ in more than the
#: seed: the member of seed ``s`` takes ``MEMBERS[config][s % len(MEMBERS[config])]``
#: on top of the config, so seeds 0, 1, 2, ... take them in turn, as the members
#: of ``make_cnn_ensemble(member_params=...)`` do.
MEMBERS = {
    "frontier-mixed": [
        {},
        {"module__kernel_sizes": (3, 3, 3)},
        {"module__kernel_sizes": (7, 3, 3)},
    ],
}
