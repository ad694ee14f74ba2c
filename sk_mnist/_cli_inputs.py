"""What the ``sk-mnist`` command reads and builds: numbers, model names, model files, output folders.

Each check fails with :class:`UsageError`, which the command reports as one line
and exit status 2.
"""

import argparse
import tempfile
from pathlib import Path

from ._optional import require
from .baselines import CNN_BASELINES, RUNS, list_baselines, make_baseline
from .persistence import SAFE_SUFFIX, SKOPS_SUFFIX, load_model

#: Where ``sk-mnist train`` saves a model unless told (a CNN in the first, any
#: other baseline in the second), and where the other commands look for one.
DEFAULT_MODEL_FILES = ("sk-mnist-model" + SAFE_SUFFIX, "sk-mnist-model" + SKOPS_SUFFIX)

#: The files ``sk-mnist export`` writes, which evaluate and predict read too.
ONNX_SUFFIX = ".onnx"


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


def require_report_extra(command):
    """Refuse at once, not after hours of fitting, a command whose results need the report extra."""
    for module in ("pandas", "matplotlib"):
        require(module, "report", command)


def model_names(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name.removesuffix("+deskew") not in list_baselines():
            raise UsageError(
                f"unknown model {name!r}; choose from {', '.join(list_baselines())} "
                "(add '+deskew' to deskew the images first)"
            )
    if not names:
        raise UsageError("--models names no model")
    return names


def build_model(name, run, args):
    """The model ``name`` for a kind of run, and its number of training images."""
    base, deskew = name.removesuffix("+deskew"), name.endswith("+deskew")
    train_size, params = RUNS[run].get(base, (None, {}))
    if args.epochs is not None and base in CNN_BASELINES:
        params = {**params, "max_epochs": args.epochs}
    model = make_baseline(base, deskew=deskew, random_state=args.random_state, n_jobs=args.n_jobs, **params)
    return model, args.train_size or train_size


def default_model_file(name):
    is_cnn = name.removesuffix("+deskew") in CNN_BASELINES
    return DEFAULT_MODEL_FILES[0] if is_cnn else DEFAULT_MODEL_FILES[1]


def check_model_path(name, path):
    """Refuse a model file whose format cannot hold the model ``name``."""
    is_cnn = name.removesuffix("+deskew") in CNN_BASELINES
    suffix = Path(path).suffix
    if suffix == SAFE_SUFFIX and not is_cnn:
        raise UsageError(
            f"cannot save the model to {path!r}: a {SAFE_SUFFIX} file holds the CNNs only; "
            f"save {name} as {SKOPS_SUFFIX}"
        )
    if suffix == SKOPS_SUFFIX and is_cnn:
        raise UsageError(f"cannot save the model to {path!r}: save a CNN as {SAFE_SUFFIX}")


def writable_folder(path):
    """Create the folder ``path`` if needed, and check that files can be written there."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create folder {str(path)!r}: {exc}") from exc
    try:  # mkdir succeeds on an existing read-only folder: only a write tells
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise UsageError(f"cannot write to folder {str(path)!r}: {exc}") from exc


def model_path(path):
    """The model file a command reads: ``path``, or the default one that exists."""
    if path is not None:
        return path
    present = [name for name in DEFAULT_MODEL_FILES if Path(name).exists()]
    if len(present) > 1:
        raise UsageError(f"both {' and '.join(present)} exist; name the model file to use")
    if not present:
        raise UsageError(
            f"no model file {' or '.join(DEFAULT_MODEL_FILES)} here; train one with: sk-mnist train cnn"
        )
    return present[0]


def load(path, trust_pickle):
    """The model in ``path``, safely: a pickle only if ``trust_pickle``."""
    if not Path(path).exists():
        raise UsageError(
            f"model file {str(path)!r} not found; train one with: sk-mnist train cnn --out {path}"
        )
    if not Path(path).is_file():  # a FIFO or a device would block or never end
        raise UsageError(f"model file {str(path)!r} is not a regular file")
    try:
        if Path(path).suffix == ONNX_SUFFIX:  # as export writes it: predicts through onnxruntime
            from .export import ONNXClassifier

            return ONNXClassifier(path).fit()
        return load_model(path, trust_pickle=trust_pickle)
    except Exception as exc:  # a damaged or foreign file fails in many ways
        raise UsageError(f"cannot read model file {str(path)!r}: {exc}") from exc


def load_classifier(args):
    """The model of ``args.model``, checked to classify 28x28 MNIST images."""
    path = model_path(args.model)
    model = load(path, args.trust_pickle)
    if not hasattr(model, "predict"):
        raise UsageError(f"model file {str(path)!r} holds a {type(model).__name__}, not a classifier")
    n_features = getattr(model, "n_features_in_", None)
    if n_features != 28 * 28:
        raise UsageError(
            f"model file {str(path)!r} holds a model of {n_features} pixels per image, "
            "not of 28x28 MNIST images (784 pixels)"
        )
    return model


# -- numbers on the command line (argparse types) ------------------------------


def parse_integer(text):
    try:
        return int(text)
    except ValueError:  # argparse would name the type function in its message
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def parse_positive(text):
    value = parse_integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_seed(text):
    value = parse_integer(text)
    # numpy's and torch's seeds alike are integers from 0 to 2**32 - 1.
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, got {text}")
    return value


def parse_n_jobs(text):
    value = parse_integer(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a positive number of jobs or -1 (all cores), not 0")
    return value
