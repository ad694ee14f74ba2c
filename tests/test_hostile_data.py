"""Hostile data files and caches: what read_idx and load_mnist do with them."""

import errno
import gzip
import io
import os
import re
import tracemalloc

import numpy as np
import pytest

from sk_mnist import _files, load_mnist
from sk_mnist.datasets import _mnist, read_idx


@pytest.fixture(scope="module")
def reference():
    """The test set decoded from the bundled files, checked against the published sha256."""
    return _mnist._decode_verified("test-images"), _mnist._decode_verified("test-labels")


def assert_is_reference(X, y, reference):
    images, labels = reference
    assert X.dtype == np.uint8 and X.shape == (10000, 784)
    np.testing.assert_array_equal(X, images.reshape(10000, 784))
    assert y.dtype == np.int64 and y.shape == (10000,)
    np.testing.assert_array_equal(y, labels)


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


# --- the cache ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["test-images", "test-labels"])
def test_empty_cache_file_is_rebuilt(tmp_path, key, reference, monkeypatch):
    load_mnist("test", data_home=tmp_path)
    (tmp_path / f"mnist-{key}.npy").write_bytes(b"")
    assert_is_reference(*load_mnist("test", return_X_y=True, data_home=tmp_path), reference)
    # rebuilt: the next load comes from the cache again
    monkeypatch.setattr(_mnist, "_decode_verified", lambda key: pytest.fail("decoded again"))
    assert_is_reference(*load_mnist("test", return_X_y=True, data_home=tmp_path), reference)


def edit_npy_header(path, old, new):
    """Replace ``old`` by ``new`` in a .npy header, keeping its length and so the data's offset."""
    data = path.read_bytes()
    length = int.from_bytes(data[8:10], "little")
    header = data[10 : 10 + length]
    assert old in header
    header = header.replace(old, new).rstrip(b" \n").ljust(length - 1) + b"\n"
    path.write_bytes(data[:10] + header + data[10 + length :])


@pytest.mark.parametrize(
    "key, old, new",
    [
        ("test-images", b"'|u1'", b"'|i1'"),  # pixels above 127 would read negative
        ("test-images", b"(10000, 28, 28)", b"(280000, 28)"),  # same bytes, other shape
        ("test-labels", b"(10000,)", b"(100, 100)"),
    ],
    ids=["int8-pixels", "image-shape", "label-shape"],
)
def test_edited_npy_header_is_rebuilt(tmp_path, key, old, new, reference):
    load_mnist("test", data_home=tmp_path)
    npy = tmp_path / f"mnist-{key}.npy"
    edit_npy_header(npy, old, new)
    assert_is_reference(*load_mnist("test", return_X_y=True, data_home=tmp_path), reference)
    rebuilt = np.load(npy)
    assert rebuilt.dtype == np.uint8 and rebuilt.shape == reference[key == "test-labels"].shape


def test_cache_path_that_is_a_folder_warns_and_returns_the_data(tmp_path, reference):
    # A folder where a cache file belongs is not deleted: it may hold anything.
    (tmp_path / "mnist-test-labels.npy").mkdir()
    (tmp_path / "mnist-test-labels.npy" / "keep.txt").write_text("mine")
    with pytest.warns(UserWarning, match=r"Cannot cache the MNIST data in .*Is a directory") as record:
        X, y = load_mnist("test", return_X_y=True, data_home=tmp_path)
    assert_is_reference(X, y, reference)
    assert (tmp_path / "mnist-test-labels.npy" / "keep.txt").read_text() == "mine"
    # the whole message, with the error that kept the labels from the cache
    error = rf"\[Errno {errno.EISDIR}\] {re.escape(os.strerror(errno.EISDIR))}: .*mnist-test-labels\.npy'"
    assert len(record) == 1
    assert re.fullmatch(
        rf"Cannot cache the MNIST data in {re.escape(str(tmp_path))} \({error}\); they are returned "
        r"uncached and will be decoded again next time\. Pass a writable data_home to cache them\.",
        str(record[0].message),
    ), str(record[0].message)
    # and it points at the caller of load_mnist, not at sk_mnist's own code
    # (mutation testing wraps each function in one more frame, which the
    # warning then names: still outside the package)
    assert record[0].filename == __file__ or "mutmut" in record[0].filename
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to fill a disk")
def test_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    # The cache's temporary file is opened on /dev/full, where every write
    # fails with ENOSPC, as on a full disk.
    real_fdopen = os.fdopen

    def onto_a_full_disk(fd, *args, **kwargs):
        os.close(fd)
        return real_fdopen(os.open("/dev/full", os.O_WRONLY), *args, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(OSError, match="the disk is full") as info:
        patch.setattr(_files.os, "fdopen", onto_a_full_disk)
        load_mnist("test", data_home=tmp_path)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(tmp_path / "mnist-test-images.npy")
    assert info.value.strerror == (
        f"Cannot cache the MNIST data: the disk is full ({os.strerror(errno.ENOSPC)}); nothing was "
        "written. Free some space, or pass another data_home"
    )
    assert list(tmp_path.iterdir()) == []


def test_read_only_data_home_warns_and_returns_the_data(tmp_path, monkeypatch, reference):
    tmp_path.chmod(0o555)
    if os.geteuid() == 0:
        # Root ignores the mode bits: make creating the cache's temporary file
        # fail as the kernel makes it fail for everyone else.
        def refused(*args, dir=None, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))

        monkeypatch.setattr(_files.tempfile, "mkstemp", refused)
    try:
        with pytest.warns(UserWarning, match=r"Cannot cache the MNIST data in .*Permission denied"):
            X, y = load_mnist("test", return_X_y=True, data_home=tmp_path)
    finally:
        tmp_path.chmod(0o755)
    assert_is_reference(X, y, reference)
    assert list(tmp_path.iterdir()) == []


# --- the IDX reader -------------------------------------------------------------


def idx_header(type_code, shape):
    return bytes([0, 0, type_code, len(shape)]) + np.asarray(shape, ">u4").tobytes()


def test_gzip_beyond_numpy_is_refused_at_the_header():
    # 3 x (2**32 - 1)**2 bytes (5.5e19) exceed numpy's limit of 2**63 - 1; the
    # 32 MiB of zeros behind the header compress to a few kB.
    shape = (3, 2**32 - 1, 2**32 - 1)
    data = gzip.compress(idx_header(0x08, shape) + bytes(32 << 20), compresslevel=1)
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError, match=r"declares shape \(3, 4294967295, 4294967295\), 55340232195358851075 bytes"
        ):
            read_idx(io.BytesIO(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"buffered {peak} bytes"


def test_raw_header_beyond_numpy_is_refused():
    with pytest.raises(ValueError, match="which numpy cannot represent"):
        read_idx(io.BytesIO(idx_header(0x0E, [2**32 - 1] * 3) + bytes(100)))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_text_mode_file_is_a_type_error(tmp_path, compress):
    raw = idx_header(0x08, [3]) + bytes([1, 2, 3])
    path = tmp_path / "digits.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with (
        open(path, encoding="utf-8") as fh,
        pytest.raises(
            TypeError, match=r"digits.idx: read_idx needs a binary file object \(opened with 'rb'\)"
        ),
    ):
        read_idx(fh)


class TextReader:
    """A duck-typed file object whose read returns text."""

    def read(self, size=-1):
        return "\x00\x00\x08\x01\x00\x00\x00\x00"[: None if size < 0 else size]


@pytest.mark.parametrize("stream", [io.StringIO("\x00\x00\x08\x01\x00\x00\x00\x00"), TextReader()])
def test_text_stream_is_a_type_error(stream):
    with pytest.raises(TypeError, match="read_idx needs a binary file object"):
        read_idx(stream)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_text_mode_error_message(tmp_path, compress):
    raw = idx_header(0x08, [3]) + bytes([1, 2, 3])
    path = tmp_path / "digits.idx"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    message = f"{path}: read_idx needs a binary file object (opened with 'rb'); got a text-mode file object."
    with open(path, encoding="utf-8") as fh, pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        read_idx(fh)


class NamedTextReader(TextReader):
    name = "digits-as-text"


@pytest.mark.parametrize("stream", [NamedTextReader(), TextReader()], ids=["named", "nameless"])
def test_text_stream_error_names_the_stream_and_what_read_returned(stream):
    name = getattr(stream, "name", repr(stream))
    message = (
        f"{name}: read_idx needs a binary file object (opened with 'rb'); got one whose read() returns str."
    )
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        read_idx(stream)
