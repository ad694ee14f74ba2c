"""The sk-mnist command line."""

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sk_mnist.baselines import DEFAULT_MODELS, RUNS
from sk_mnist.cli import build_parser, main
from sk_mnist.datasets import center_digit, read_digit_image
from sk_mnist.persistence import load_model


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_quick_compare_end_to_end(tmp_path, capsys):
    out_dir = tmp_path / "report"
    argv = [
        "compare",
        "--quick",
        "--models",
        "cnn,rbf_svm,random_forest+deskew",
        "--train-size",
        "300",
        "--test-size",
        "200",
        "--out",
        str(out_dir),
    ]
    status, out, err = run(argv, capsys)
    assert status == 0, err
    table = out.splitlines()
    assert table[0].split()[:3] == ["model", "train", "images"]
    assert [line.split()[0] for line in table[2:5]] == ["cnn", "rbf_svm", "random_forest+deskew"]
    assert out.rstrip().endswith(str((out_dir / "report.html").resolve()))
    assert "epoch" in err and "models" in err  # the progress bars
    results = json.loads((out_dir / "results.json").read_text())
    assert [m["train_size"] for m in results["models"]] == [300, 300, 300]
    assert results["test_set"]["n_samples"] == 200
    assert len(results["models"][0]["histories"][0]) == RUNS["quick"]["cnn"][1]["max_epochs"]
    assert "Quick run" in results["notes"][0] and "--train-size 300" in results["notes"][1]


def test_quick_run_covers_the_required_models():
    assert {"cnn", "rbf_svm", "random_forest"} <= set(DEFAULT_MODELS)
    assert set(RUNS["quick"]) == set(RUNS["default"])
    # The default run fits every model on at most the 60,000 training images.
    assert all(0 < size <= 60_000 for size, _ in RUNS["default"].values())


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "forest.skops"
    assert main(["train", "random_forest", "--train-size", "3000", "--out", str(path)]) == 0
    return path


def test_train_then_evaluate(model_file, capsys):
    status, out, _ = run(["evaluate", str(model_file), "--test-size", "500"], capsys)
    assert status == 0
    accuracy = float(out.split()[1].rstrip("%"))
    assert 85 < accuracy <= 100
    assert "in 500 test images" in out


def mnist_picture(digit, *, invert, scale=5, pad=30):
    """A test digit as a user might draw it: larger, off-centre, on a wide canvas."""
    image = np.kron(digit.reshape(28, 28), np.ones((scale, scale)))
    canvas = np.zeros((28 * scale + 2 * pad, 28 * scale + 3 * pad))
    canvas[pad : pad + 28 * scale, 2 * pad : 2 * pad + 28 * scale] = image
    return 255 - canvas if invert else canvas


def test_predict_reads_pictures_like_mnist(model_file, mnist_test, tmp_path, capsys):
    X_test, y_test = mnist_test
    paths = []
    for i in range(10):
        picture = mnist_picture(X_test[i], invert=i % 2 == 0).astype(np.uint8)
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(picture).save(path)
        paths.append(str(path))
    status, out, _ = run(["predict", "--model", str(model_file), *paths], capsys)
    assert status == 0
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == paths
    labels = [int(line.split(": ")[1].split()[0]) for line in lines]
    assert np.mean(np.array(labels) == y_test[:10]) >= 0.8
    probabilities = [float(line.rsplit("probability ", 1)[1].rstrip(")")) for line in lines]
    # Each line is the saved model's answer for the picture as read_digit_image
    # reads it: its class and that class's probability, to the 3 printed decimals.
    model = load_model(model_file)
    proba = model.predict_proba(np.stack([read_digit_image(path) for path in paths]))
    assert labels == model.classes_[proba.argmax(axis=1)].tolist()
    np.testing.assert_allclose(probabilities, proba.max(axis=1), rtol=0, atol=5e-4 + 1e-12)


def test_center_digit_normalizes_as_mnist_was_made(mnist_test):
    digit = mnist_test[0][0]
    light, dark = mnist_picture(digit, invert=True), mnist_picture(digit, invert=False)
    centred = center_digit(light)
    np.testing.assert_array_equal(centred, center_digit(dark))  # background polarity does not matter
    image = centred.reshape(28, 28).astype(float)
    rows, cols = np.nonzero(image)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21  # fits the 20x20 box (a pixel of anti-aliasing)
    mass = image / image.sum()
    grid_rows, grid_cols = np.indices(image.shape)
    assert abs((mass * grid_rows).sum() - 14) <= 0.5 and abs((mass * grid_cols).sum() - 14) <= 0.5


def test_center_digit_recovers_mnist_digits_from_pictures_of_them(mnist_test):
    # An MNIST digit, enlarged and moved on a wider canvas, comes back to
    # (nearly) the same 28x28 image: the normalization is MNIST's own.
    X = mnist_test[0][:50]
    recovered = np.stack([center_digit(mnist_picture(digit, invert=True)) for digit in X]).astype(float)
    correlations = [np.corrcoef(a, b)[0, 1] for a, b in zip(recovered, X.astype(float))]
    assert min(correlations) > 0.95


def test_center_digit_rejects_a_blank_picture():
    with pytest.raises(ValueError, match="blank"):
        center_digit(np.full((30, 30), 200))


def test_read_digit_image_treats_transparency_as_background(mnist_test, tmp_path):
    digit = mnist_test[0][0]
    ink = mnist_picture(digit, invert=False).astype(np.uint8)
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., 3] = ink  # black ink whose opacity is the stroke, on a transparent canvas
    path = tmp_path / "transparent.png"
    Image.fromarray(rgba).save(path)  # (h, w, 4) uint8: RGBA
    np.testing.assert_array_equal(read_digit_image(path), center_digit(ink))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--models", "cnn,svm"], "unknown model 'svm'"),
        (["train", "forest"], "unknown model 'forest'"),
        (["evaluate", "missing.joblib"], "model file 'missing.joblib' not found"),
        (["predict", "--model", "missing.joblib", "x.png"], "model file 'missing.joblib' not found"),
        (["compare", "--quick", "--full"], "not allowed with argument"),
        (["compare", "--train-size", "0"], "positive integer"),
        (["frobnicate"], "invalid choice"),
        (["compare", "--models", "knn", "--out", "/proc/no/such/folder"], "cannot create folder"),
    ],
)
def test_bad_input_is_one_line_on_stderr(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, err = run(argv, capsys)
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreadable_image_and_damaged_model(model_file, tmp_path, capsys):
    not_png = tmp_path / "notes.png"
    not_png.write_text("not an image")
    status, _, err = run(["predict", "--model", str(model_file), str(not_png)], capsys)
    assert status == 2 and err.startswith(f"sk-mnist: error: cannot read image '{not_png}'")
    assert len(err.strip().splitlines()) == 1
    damaged = tmp_path / "damaged.skops"
    damaged.write_bytes(model_file.read_bytes()[:100])
    status, _, err = run(["evaluate", str(damaged)], capsys)
    assert status == 2 and err.startswith(f"sk-mnist: error: cannot read model file '{damaged}'")
    assert len(err.strip().splitlines()) == 1


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "sk_mnist", "--help"], capture_output=True, text=True, check=True
    )
    assert "compare" in done.stdout and "predict" in done.stdout


def test_a_skm_path_saves_in_the_safe_format(tmp_path, capsys):
    from sk_mnist import load

    model = tmp_path / "cnn.skm"
    assert main(["train", "cnn", "--train-size", "500", "--epochs", "1", "--out", str(model)]) == 0
    assert load(model).predict(np.zeros((1, 784), np.uint8)).shape == (1,)
    status, out, _ = run(["evaluate", str(model), "--test-size", "200"], capsys)
    assert status == 0 and "accuracy" in out
    # scikit-learn's models go to .skops files: said plainly before fitting, nothing written
    forest = tmp_path / "forest.skm"
    status, _, err = run(["train", "random_forest", "--train-size", "500", "--out", str(forest)], capsys)
    assert status == 2 and f"cannot save the model to {str(forest)!r}" in err
    assert not forest.exists()


def test_export_a_saved_cnn_to_onnx(tmp_path, capsys, mnist_test):
    pytest.importorskip("onnxruntime")
    from sk_mnist import load
    from sk_mnist.export import ONNXClassifier

    model = tmp_path / "cnn.skm"
    assert main(["train", "cnn", "--train-size", "1000", "--epochs", "1", "--out", str(model)]) == 0
    capsys.readouterr()
    for extra, name in (([], "fp32.onnx"), (["--int8"], "int8.onnx")):
        status, out, _ = run(
            ["export", str(model), "--format", "onnx", *extra, "--out", str(tmp_path / name)], capsys
        )
        assert status == 0 and "wrote" in out
    X, _ = mnist_test
    fp32 = ONNXClassifier(tmp_path / "fp32.onnx").fit()
    np.testing.assert_array_equal(fp32.predict(X[:500]), load(model).predict(X[:500]))
    assert (tmp_path / "int8.onnx").stat().st_size * 3 < (tmp_path / "fp32.onnx").stat().st_size

    # evaluate and predict read what export wrote, and agree with the model exported.
    def accuracy_line(path):
        status, out, err = run(["evaluate", str(path), "--test-size", "500"], capsys)
        assert status == 0, err
        return out.split("; predicted in")[0]

    assert accuracy_line(tmp_path / "fp32.onnx") == accuracy_line(model)
    pictures = []
    for i in range(3):
        pictures.append(tmp_path / f"digit{i}.png")
        Image.fromarray(255 - X[i].reshape(28, 28)).save(pictures[-1])

    def predictions(path):
        status, out, err = run(["predict", *map(str, pictures), "--model", str(path)], capsys)
        assert status == 0, err
        return [line.rsplit(" ", 1) for line in out.splitlines()]  # ["path: label (probability", "p)"]

    from_onnx, from_torch = predictions(tmp_path / "fp32.onnx"), predictions(model)
    assert [first for first, _ in from_onnx] == [first for first, _ in from_torch]
    np.testing.assert_allclose(
        [float(p.rstrip(")")) for _, p in from_onnx], [float(p.rstrip(")")) for _, p in from_torch], atol=1e-3
    )


def test_export_refuses_a_model_it_cannot_export(model_file, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    status, _, err = run(["export", str(model_file), "--out", str(tmp_path / "forest.onnx")], capsys)
    assert status == 2 and err.startswith("sk-mnist: error: cannot export") and len(err.splitlines()) == 1


def test_train_and_evaluate_need_no_report_extra(tmp_path):
    """Without pandas and matplotlib: train and evaluate work; compare says which extra it needs."""
    # Imports of pandas and matplotlib fail as they do where neither is installed.
    blocked = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('pandas', 'matplotlib'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "from sk_mnist.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )

    def sk_mnist(*argv):
        done = subprocess.run(
            [sys.executable, "-c", blocked, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=300
        )
        return done.returncode, done.stdout, done.stderr

    status, out, err = sk_mnist("train", "logistic", "--train-size", "300")
    assert status == 0, err
    assert "saved to sk-mnist-model.skops" in out
    status, out, err = sk_mnist("evaluate", "--test-size", "100")
    assert status == 0, err
    assert out.startswith("accuracy ")
    for command in ("compare", "search"):  # refused before anything is fitted
        status, _, err = sk_mnist(command, "--train-size", "300")
        assert status == 2
        assert err == (
            f"sk-mnist: error: pandas is needed for sk-mnist {command} but is not installed; "
            'install it with: pip install "sk_mnist[report]"\n'
        )


def test_one_unreadable_picture_does_not_stop_the_others(model_file, mnist_test, tmp_path, capsys):
    X_test, _ = mnist_test
    good = []
    for i in range(2):
        good.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(mnist_picture(X_test[i], invert=True).astype(np.uint8)).save(good[-1])
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    status, out, err = run(["predict", "--model", str(model_file), good[0], str(broken), good[1]], capsys)
    assert status == 2  # something went wrong, said at the end
    assert [line.split(":")[0] for line in out.splitlines()] == good
    assert err.startswith(f"sk-mnist: error: cannot read image '{broken}': ") and len(err.splitlines()) == 1


@pytest.mark.parametrize("option", ["--train-size", "--epochs", "--random-state", "--n-jobs"])
def test_a_number_option_given_text_says_so_in_plain_words(option, capsys):
    status, _, err = run(["train", "cnn", option, "abc"], capsys)
    assert status == 2
    assert f"argument {option}: must be an integer, got 'abc'" in err
    assert "_" not in err.split(option)[1].split("(see")[0]  # no function name such as _positive


@pytest.mark.parametrize("command", ["compare", "train", "evaluate", "predict", "export", "search"])
def test_every_option_and_argument_is_described_with_its_default(command):
    parser = next(
        action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)
    ).choices[command]
    assert parser.description
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, action.dest
        # Flags are off unless given; every option with a value names its default.
        if action.option_strings and action.nargs != 0 and not action.choices:
            assert "default" in action.help, (command, action.dest)
