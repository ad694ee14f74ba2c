import gzip
import hashlib
import json
import re
import sys
from importlib import resources

import numpy as np
import pytest

from sk_mnist import load_mnist
from sk_mnist.datasets import _mnist, get_data_home


def test_shapes_and_dtypes(mnist_train, mnist_test):
    X, y = mnist_train
    assert X.shape == (60000, 784) and X.dtype == np.uint8
    assert y.shape == (60000,) and y.dtype == np.int64
    Xt, yt = mnist_test
    assert Xt.shape == (10000, 784) and yt.shape == (10000,)
    assert set(np.unique(y)) == set(range(10))
    assert X.max() == 255 and X.min() == 0


def test_bunch():
    bunch = load_mnist("test")
    assert bunch.images.shape == (10000, 28, 28)
    np.testing.assert_array_equal(bunch.images.reshape(10000, -1), bunch.data)
    assert bunch.feature_names[0] == "pixel_0_0" and bunch.feature_names[29] == "pixel_1_1"
    assert list(bunch.target_names) == list(range(10))
    assert "LeCun" in bunch.DESCR and bunch.frame is None


def test_all_is_train_then_test(mnist_train, mnist_test):
    X, y = load_mnist("all", return_X_y=True)
    assert X.shape == (70000, 784)
    np.testing.assert_array_equal(X[:60000], mnist_train[0])
    np.testing.assert_array_equal(y[60000:], mnist_test[1])


def test_as_frame():
    pd = pytest.importorskip("pandas")
    bunch = load_mnist("test", as_frame=True)
    assert isinstance(bunch.data, pd.DataFrame) and bunch.data.shape == (10000, 784)
    assert isinstance(bunch.target, pd.Series) and bunch.frame.shape == (10000, 785)


def test_as_frame_holds_the_same_pixels_and_digits(mnist_test):
    pytest.importorskip("pandas")
    X, y = mnist_test
    bunch = load_mnist("test", as_frame=True)
    assert list(bunch.data.columns) == bunch.feature_names
    np.testing.assert_array_equal(bunch.data.to_numpy(), X)
    assert bunch.target.name == "target"
    np.testing.assert_array_equal(bunch.target.to_numpy(), y)
    assert list(bunch.frame.columns) == [*bunch.feature_names, "target"]
    np.testing.assert_array_equal(bunch.frame.to_numpy(), np.column_stack([X, y]))


def test_as_frame_without_pandas_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes "import pandas" fail
    message = "load_mnist(as_frame=True) requires pandas: pip install pandas"
    with pytest.raises(ImportError, match=f"^{re.escape(message)}$"):
        load_mnist("test", as_frame=True)


def test_feature_names_are_row_and_column_of_each_pixel():
    # documented: pixel (r, c) is column 28 * r + c, named "pixel_r_c"
    names = load_mnist("test").feature_names
    assert len(names) == 784
    assert all(name == f"pixel_{j // 28}_{j % 28}" for j, name in enumerate(names))


def test_default_subset_is_train(mnist_train):
    X, y = load_mnist(return_X_y=True)
    np.testing.assert_array_equal(X, mnist_train[0])
    np.testing.assert_array_equal(y, mnist_train[1])


def test_unknown_subset():
    with pytest.raises(ValueError, match="subset must be one of"):
        load_mnist("validation")


def test_data_home_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SK_MNIST_DATA_HOME", str(tmp_path / "cache"))
    assert get_data_home() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()


def test_default_data_home_is_xdg_cache_then_home_cache(tmp_path, monkeypatch):
    # get_data_home's docstring: SK_MNIST_DATA_HOME, else $XDG_CACHE_HOME/sk_mnist,
    # else ~/.cache/sk_mnist.
    monkeypatch.delenv("SK_MNIST_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_data_home() == tmp_path / "xdg" / "sk_mnist"
    assert (tmp_path / "xdg" / "sk_mnist").is_dir()
    # load_mnist caches there by default
    load_mnist("test", return_X_y=True)
    assert (tmp_path / "xdg" / "sk_mnist" / "mnist-test-images.npy").is_file()
    for unset in (monkeypatch.delenv, lambda name: monkeypatch.setenv(name, "")):
        unset("XDG_CACHE_HOME")
        assert get_data_home() == tmp_path / "home" / ".cache" / "sk_mnist"
    assert (tmp_path / "home" / ".cache" / "sk_mnist").is_dir()
    # the environment variable wins over both
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SK_MNIST_DATA_HOME", str(tmp_path / "mine"))
    assert get_data_home() == tmp_path / "mine"


def test_cache_is_written_and_reused(tmp_path, monkeypatch):
    X, y = load_mnist("test", return_X_y=True, data_home=tmp_path)
    assert (tmp_path / "mnist-test-images.npy").exists()
    # A second load must come from the cache, not from decoding the IDX file.
    monkeypatch.setattr(_mnist, "_decode_verified", lambda key: pytest.fail("decoded again"))
    X2, y2 = load_mnist("test", return_X_y=True, data_home=tmp_path)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize(
    "damage",
    [
        lambda home: (home / "mnist-test-labels.npy").write_bytes(b"garbage"),
        lambda home: (home / "mnist-test-labels.npy").write_bytes(
            (home / "mnist-test-labels.npy").read_bytes()[:-10]
        ),
        lambda home: _flip_last_byte(home / "mnist-test-labels.npy"),
        lambda home: (home / "mnist-test-labels.json").write_text("{not json"),
        lambda home: _edit_manifest(home / "mnist-test-labels.json", source_sha256="0" * 64),
        lambda home: _edit_manifest(home / "mnist-test-labels.json", version=0),
    ],
    ids=["garbage", "truncated", "bit-flip", "bad-manifest", "stale-source", "old-version"],
)
def test_damaged_cache_is_rebuilt(tmp_path, damage, mnist_test):
    load_mnist("test", data_home=tmp_path)
    damage(tmp_path)
    _, y = load_mnist("test", return_X_y=True, data_home=tmp_path)
    np.testing.assert_array_equal(y, mnist_test[1])
    # and the rebuilt cache is sound again
    meta = json.loads((tmp_path / "mnist-test-labels.json").read_text())
    assert meta["source_sha256"] == _mnist._FILES["test-labels"][1]


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_manifest(path, **changes):
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    filename, _ = _mnist._FILES["test-labels"]
    monkeypatch.setitem(_mnist._FILES, "test-labels", (filename, "f" * 64))
    # the message gives the sha256 of the decompressed file, computed here independently
    bundled = resources.files("sk_mnist.datasets") / "data" / filename
    actual = hashlib.sha256(gzip.decompress(bundled.read_bytes())).hexdigest()
    message = (
        f"The bundled MNIST file {filename} failed its integrity check: sha256 of its content is "
        f"{actual}, expected {'f' * 64}. The installation is damaged; reinstall sk_mnist."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        load_mnist("test", data_home=tmp_path)
    # nothing was cached from the refused file
    assert not (tmp_path / "mnist-test-labels.npy").exists()
