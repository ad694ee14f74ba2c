"""The sk-mnist command against hostile model files, pictures and arguments."""

import os
import pathlib
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import joblib
import numpy as np
import pytest
from PIL import Image

from sk_mnist import MNISTCNNClassifier, save
from sk_mnist.baselines import make_baseline
from sk_mnist.cli import main
from sk_mnist.datasets import read_digit_image
from sk_mnist.preprocessing import PixelScaler

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: The resident memory any picture may cost the command, torch included.
MEMORY_LIMIT_MB = 500


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def run_process(argv, timeout=120):
    """Run ``python -m sk_mnist argv``: its status, stdout and stderr; killed after ``timeout`` s."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "sk_mnist", *argv],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr


#: Runs the command given as its arguments and prints the child's peak
#: resident memory. A child forked from pytest itself would count pytest's
#: pages in its peak before it execs; one forked from this small process not.
_MEASURE = """
import resource, subprocess, sys
status = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(status, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def peak_rss_mb(argv, timeout=120):
    """Run ``python -m sk_mnist argv``: its status, stderr and peak resident memory in MB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", _MEASURE, sys.executable, "-m", "sk_mnist", *argv]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env, timeout=timeout)
    status, peak_kb = map(int, done.stdout.split())  # Linux reports kilobytes
    return status, done.stderr, peak_kb / 1024


def one_line_error(err, fragment):
    assert fragment in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def digit_picture(digit, scale=5):
    """An MNIST digit as a user might draw it: dark ink on white, enlarged on a wider canvas."""
    image = np.kron(digit.reshape(28, 28).astype(float), np.ones((scale, scale)))
    canvas = np.zeros((28 * scale + 60, 28 * scale + 90))
    canvas[30 : 30 + 28 * scale, 60 : 60 + 28 * scale] = image
    return 255 - canvas


@pytest.fixture(scope="module")
def forest_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "forest.skops"
    assert main(["train", "random_forest", "--train-size", "500", "--n-jobs", "1", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def cnn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "cnn.skm"
    assert main(["train", "cnn", "--train-size", "300", "--epochs", "1", "--out", str(path)]) == 0
    return path


class WritesAFileWhenUnpickled:
    """A stand-in for an attacker's pickle: loading it creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


# -- item 3: pickles are never read by default ----------------------------------


def test_the_default_model_file_is_never_a_pickle(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    joblib.dump(WritesAFileWhenUnpickled(marker), tmp_path / "sk-mnist-model.joblib")
    for argv in (["evaluate"], ["predict", "x.png"], ["export"]):
        status, _, err = run(argv, capsys)
        assert status == 2
        one_line_error(err, "no model file sk-mnist-model.skm or sk-mnist-model.skops here")
    assert not marker.exists()


def test_a_pickle_is_read_only_with_trust_pickle(forest_file, tmp_path, capsys):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "model.joblib"
    joblib.dump(WritesAFileWhenUnpickled(marker), hostile)
    status, _, err = run(["evaluate", str(hostile)], capsys)
    assert status == 2
    one_line_error(err, f"cannot read model file '{hostile}': it is read as a pickle")
    assert "pass --trust-pickle only if you trust its source" in err
    assert not marker.exists()
    # the user's own pickle, with the flag
    from sk_mnist.persistence import load_model

    trusted = tmp_path / "mine.joblib"
    joblib.dump(load_model(forest_file), trusted)
    status, out, _ = run(["evaluate", str(trusted), "--trust-pickle", "--test-size", "200"], capsys)
    assert status == 0 and "in 200 test images" in out


def is_skops_file(path):
    return zipfile.is_zipfile(path) and "schema.json" in zipfile.ZipFile(path).namelist()


def test_train_saves_in_safe_formats_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "random_forest", "--train-size", "300", "--n-jobs", "1"]) == 0
    assert is_skops_file(tmp_path / "sk-mnist-model.skops")
    status, out, _ = run(["evaluate", "--test-size", "100"], capsys)
    assert status == 0 and "in 100 test images" in out
    assert main(["train", "cnn", "--train-size", "300", "--epochs", "1"]) == 0
    assert zipfile.ZipFile(tmp_path / "sk-mnist-model.skm").namelist()[0] == "manifest.json"
    capsys.readouterr()  # the training's progress bars
    status, _, err = run(["evaluate"], capsys)  # which one is meant is not guessed
    assert status == 2
    one_line_error(err, "both sk-mnist-model.skm and sk-mnist-model.skops exist; name the model file")


@pytest.mark.parametrize("name", ["rbf_svm_pca", "random_forest", "logistic+deskew"])
def test_skops_files_keep_the_baselines_predictions(name, mnist_train, tmp_path):
    from sk_mnist.persistence import load_model, save_model

    X, y = mnist_train
    base, deskew = name.removesuffix("+deskew"), name.endswith("+deskew")
    model = make_baseline(base, deskew=deskew, random_state=0, n_jobs=1).fit(X[:600], y[:600])
    path = tmp_path / "model.skops"
    save_model(model, path)
    assert is_skops_file(path)
    np.testing.assert_array_equal(load_model(path).predict(X[-500:]), model.predict(X[-500:]))


def test_a_skops_file_of_untrusted_types_is_refused(tmp_path, capsys):
    skops_io = pytest.importorskip("skops.io")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    path = tmp_path / "hostile.skops"
    skops_io.dump(make_pipeline(FunctionTransformer(os.system)), path)
    status, _, err = run(["evaluate", str(path)], capsys)
    assert status == 2
    one_line_error(err, "it holds types that sk-mnist does not load: ")
    assert "system" in err


# -- item 4: 16- and 32-bit grayscale pictures ----------------------------------


@pytest.mark.parametrize(
    ("suffix", "scaled"),
    [
        (".png", lambda eight_bit: eight_bit.astype(np.uint16) * 257),  # 16-bit: 255 -> 65535
        (".tiff", lambda eight_bit: (eight_bit / 255).astype(np.float32)),  # 32-bit float in [0, 1]
        (".tiff", lambda eight_bit: eight_bit.astype(np.int32) * 1000),  # 32-bit integers
    ],
    ids=["16-bit-png", "float-tiff", "int32-tiff"],
)
def test_deep_grayscale_pictures_read_as_their_8_bit_version(suffix, scaled, mnist_test, tmp_path):
    eight_bit = digit_picture(mnist_test[0][0]).astype(np.uint8)
    Image.fromarray(eight_bit).save(tmp_path / "eight.png")
    Image.fromarray(scaled(eight_bit)).save(tmp_path / f"deep{suffix}")
    assert Image.open(tmp_path / f"deep{suffix}").mode in ("I;16", "F", "I")  # as saved, not 8-bit
    expected = read_digit_image(tmp_path / "eight.png")
    # the same intensities, up to float rounding: at most one level in 255 apart
    np.testing.assert_allclose(read_digit_image(tmp_path / f"deep{suffix}"), expected, atol=1)


# -- item 5: picture bombs -------------------------------------------------------


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_decompression_bomb_is_one_line(forest_file, tmp_path, capsys):
    # A valid PNG header claiming 100000 x 100000 pixels, with next to no data.
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b""))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png + png_chunk(b"IEND", b""))
    assert bomb.stat().st_size < 100
    status, _, err = run(["predict", "--model", str(forest_file), str(bomb)], capsys)
    assert status == 2
    one_line_error(err, f"cannot read image '{bomb}': Image size (10000000000 pixels) exceeds limit")


def test_a_huge_picture_is_refused_in_bounded_memory(forest_file, tmp_path):
    # 81 million pixels, 100 kB as a PNG: beyond the 2**22 pixels read.
    huge = Image.new("L", (9000, 9000), 255)
    huge.paste(0, (4000, 3000, 4400, 6000))
    huge.save(tmp_path / "huge.png")
    del huge
    start = time.monotonic()
    status, err, peak = peak_rss_mb(["predict", "--model", str(forest_file), str(tmp_path / "huge.png")])
    assert status == 2
    one_line_error(err, "the picture has 9000x9000 pixels, more than the 4,194,304 read; downscale it first")
    assert peak < MEMORY_LIMIT_MB and time.monotonic() - start < 60


def test_a_large_picture_is_reduced_in_bounded_memory(forest_file, mnist_test, tmp_path):
    # 2**22 pixels, RGBA (4 bytes each): the largest picture read, at its dearest mode.
    small = digit_picture(mnist_test[0][0], scale=4).astype(np.uint8)  # 172 x 202
    ink = Image.fromarray(255 - small).resize((2048 * 202 // 172, 2048)).crop((0, 0, 2048, 2048))
    large = Image.new("RGBA", (2048, 2048), (0, 0, 0, 0))
    large.putalpha(ink)  # black ink, opaque where the stroke is, on a transparent canvas
    large.save(tmp_path / "large.png")
    status, err, peak = peak_rss_mb(["predict", "--model", str(forest_file), str(tmp_path / "large.png")])
    assert status == 0, err
    assert peak < MEMORY_LIMIT_MB
    # what reaches the model is the digit, as from the small picture
    Image.fromarray(small).save(tmp_path / "small.png")
    correlation = np.corrcoef(
        read_digit_image(tmp_path / "large.png"), read_digit_image(tmp_path / "small.png")
    )
    assert correlation[0, 1] > 0.95


# -- item 11: ordinary bad input --------------------------------------------------


def test_a_model_file_that_is_not_a_classifier(tmp_path, capsys, mnist_test):
    path = tmp_path / "scaler.skm"
    save(PixelScaler().fit(mnist_test[0][:10]), path)
    Image.fromarray(digit_picture(mnist_test[0][0]).astype(np.uint8)).save(tmp_path / "digit.png")
    for argv in (["evaluate", str(path)], ["predict", "--model", str(path), str(tmp_path / "digit.png")]):
        status, _, err = run(argv, capsys)
        assert status == 2
        one_line_error(err, f"model file '{path}' holds a PixelScaler, not a classifier")


def test_a_model_of_other_images(tmp_path, capsys, mnist_test):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    path = tmp_path / "digits8x8.skm"
    save(MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X[:200], y[:200]), path)
    Image.fromarray(digit_picture(mnist_test[0][0]).astype(np.uint8)).save(tmp_path / "digit.png")
    for argv in (["evaluate", str(path)], ["predict", "--model", str(path), str(tmp_path / "digit.png")]):
        status, _, err = run(argv, capsys)
        assert status == 2
        one_line_error(err, "holds a model of 64 pixels per image, not of 28x28 MNIST images (784 pixels)")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--random-state", "-1"], "argument --random-state: must be an integer from 0 to 2**32 - 1, got -1"),
        (["--random-state", str(2**32)], "must be an integer from 0 to 2**32 - 1"),
        (["--n-jobs", "0"], "argument --n-jobs: must be a positive number of jobs or -1 (all cores), not 0"),
    ],
)
def test_bad_model_options(option, message, tmp_path, capsys):
    argv = ["train", "cnn", "--train-size", "100", "--epochs", "1", "--out", str(tmp_path / "m.skm"), *option]
    status, _, err = run(argv, capsys)
    assert status == 2
    one_line_error(err, message)
    assert not (tmp_path / "m.skm").exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/proc/model.skm", "cannot write to folder '/proc'"),
        ("/proc/no/such/folder/model.skm", "cannot create folder '/proc/no/such/folder'"),
    ],
)
def test_train_into_an_unwritable_folder_fails_before_fitting(out, message, capsys):
    # /proc refuses new files even to root, for whom chmod does not make a folder read-only.
    status, stdout, err = run(["train", "cnn", "--train-size", "100", "--epochs", "1", "--out", out], capsys)
    assert status == 2
    one_line_error(err, message)
    assert "fitted on" not in stdout


def test_a_model_file_format_that_cannot_hold_the_model_fails_before_fitting(tmp_path, capsys):
    out = str(tmp_path / "cnn.skops")
    status, stdout, err = run(["train", "cnn", "--train-size", "100", "--epochs", "1", "--out", out], capsys)
    assert status == 2
    one_line_error(err, f"cannot save the model to {out!r}: save a CNN as .skm")
    assert "fitted on" not in stdout


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/proc/model.onnx", "cannot write to folder '/proc'"),
        ("/proc/no/such/folder/model.onnx", "cannot create folder '/proc/no/such/folder'"),
    ],
)
def test_export_into_an_unwritable_folder(out, message, cnn_file, capsys):
    pytest.importorskip("onnxruntime")
    capsys.readouterr()  # the fixture's progress bars
    status, _, err = run(["export", str(cnn_file), "--out", out], capsys)
    assert status == 2
    one_line_error(err, message)


# -- item 12: hangs and silent defaults ---------------------------------------------


def test_a_bad_scheduler_address_is_refused_at_once(tmp_path):
    pytest.importorskip("distributed")
    start = time.monotonic()
    status, _, err = run_process(["search", "--scheduler", "not-a-url", "--out", str(tmp_path)], timeout=60)
    assert status == 2
    one_line_error(err, "bad Dask scheduler address 'not-a-url' (missing port number in address 'not-a-url')")
    assert time.monotonic() - start < 30  # the time to start Python and import torch, not a timeout


def test_an_empty_model_list_is_refused(tmp_path, capsys):
    argv = ["compare", "--models", "", "--quick", "--train-size", "100", "--test-size", "50"]
    status, stdout, err = run([*argv, "--out", str(tmp_path)], capsys)
    assert status == 2
    one_line_error(err, "--models names no model")
    assert stdout == ""


def test_a_fifo_is_not_read_as_a_picture(forest_file, tmp_path):
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)  # opening it to read would wait for a writer for ever
    status, _, err = run_process(["predict", "--model", str(forest_file), str(fifo)], timeout=60)
    assert status == 2
    one_line_error(err, f"cannot read image '{fifo}': not a regular file")
