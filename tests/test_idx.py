import gc
import gzip
import io
import math
import os
import re
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

from sk_mnist.datasets import read_idx
from sk_mnist.datasets._idx import _Prefixed


def idx_bytes(array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize(
    "array, type_code",
    [
        (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 0x08),
        (np.arange(-5, 5, dtype=np.int8), 0x09),
        (np.arange(6, dtype=np.int16).reshape(3, 2) - 3, 0x0B),
        (np.arange(4, dtype=np.int32) * 100000, 0x0C),
        (np.linspace(0, 1, 5, dtype=np.float32), 0x0D),
        (np.linspace(0, 1, 5, dtype=np.float64).reshape(5, 1), 0x0E),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_type(array, type_code, compress):
    raw = idx_bytes(array, type_code)
    data = gzip.compress(raw) if compress else raw
    result = read_idx(io.BytesIO(data))
    assert result.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(result, array)


def test_reads_paths(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "x.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(path), array)
    np.testing.assert_array_equal(read_idx(str(path)), array)


VALID = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "truncated"),
        (VALID[:3], "truncated"),
        (b"\x01" + VALID[1:], "not an IDX file"),
        (VALID[:2] + b"\x07" + VALID[3:], "unsupported IDX element type 0x07"),
        (VALID[:3] + b"\x00" + VALID[4:], "declares 0 dimensions"),
        (VALID[:3] + b"\x09" + VALID[4:], "declares 9 dimensions"),
        (VALID[:10], "truncated"),
        (VALID[:-1], "truncated"),
        (VALID + b"\x00", "trailing bytes"),
    ],
)
def test_malformed_raw(data, message):
    with pytest.raises(ValueError, match=message):
        read_idx(io.BytesIO(data))


def test_eight_dimensions_are_read_nine_refused():
    # The documented bound is 1 to 8 dimensions, inclusive: a complete,
    # well-formed file at the bound reads, one dimension more is refused.
    eight = np.arange(2 * 3 * 2, dtype=np.uint8).reshape(2, 1, 3, 1, 1, 2, 1, 1)
    np.testing.assert_array_equal(read_idx(io.BytesIO(idx_bytes(eight))), eight)
    assert read_idx(io.BytesIO(gzip.compress(idx_bytes(eight)))).shape == (2, 1, 3, 1, 1, 2, 1, 1)
    nine = eight.reshape(*eight.shape, 1)
    with pytest.raises(ValueError, match="declares 9 dimensions; expected 1 to 8"):
        read_idx(io.BytesIO(idx_bytes(nine)))


def test_error_names_the_file(tmp_path):
    path = tmp_path / "broken.idx"
    path.write_bytes(VALID[:-2])
    with pytest.raises(ValueError, match="broken.idx"):
        read_idx(path)


def test_absurd_dimensions_allocate_nothing():
    # 3 x 2**32-1 x 2**32-1 bytes claimed, a few bytes present: must fail fast,
    # at the header (more than numpy's 2**63 - 1 bytes), allocating nothing.
    header = bytes([0, 0, 0x08, 3]) + np.array([3, 2**32 - 1, 2**32 - 1], ">u4").tobytes()
    with pytest.raises(ValueError, match="which numpy cannot represent"):
        read_idx(io.BytesIO(header + b"\x00" * 100))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda gz: gz[: len(gz) // 2], "corrupt gzip|truncated"),
        (lambda gz: gz[:-8] + bytes([gz[-8] ^ 0xFF]) + gz[-7:], "corrupt gzip"),  # CRC flipped
        (lambda gz: gz[:20] + bytes([gz[20] ^ 0x55]) + gz[21:], "corrupt gzip|truncated|trailing"),
    ],
)
def test_corrupt_gzip(corrupt, message):
    compressed = gzip.compress(idx_bytes(np.arange(4000, dtype=np.uint8).reshape(40, 100)))
    with pytest.raises(ValueError, match=message):
        read_idx(io.BytesIO(corrupt(compressed)))


@pytest.mark.parametrize(
    "data, what, needed, found",
    [
        (VALID[:3], "the magic number", 4, 3),
        (VALID[:10], "the dimension sizes", 8, 6),  # two uint32 sizes, 1.5 present
        (VALID[:-1], "an array of shape (3, 4)", 12, 11),
    ],
    ids=["magic", "dimensions", "payload"],
)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_truncation_message_names_the_file_the_part_and_the_byte_counts(
    tmp_path, data, what, needed, found, compress
):
    path = tmp_path / "short.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    message = f"{path}: truncated IDX data: {what} needs {needed} bytes, found only {found}."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        read_idx(path)


def test_a_stream_without_a_name_is_named_by_its_repr():
    stream = io.BytesIO(VALID[:-1])
    message = f"{stream!r}: truncated IDX data: an array of shape (3, 4) needs 12 bytes, found only 11."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        read_idx(stream)


def test_a_path_is_read_through_a_file_that_is_closed(tmp_path):
    # read_idx opens a path itself, so it must close it, on success and on error;
    # an unclosed file is reported as a ResourceWarning when it is collected.
    good, bad = tmp_path / "good.idx", tmp_path / "bad.idx"
    good.write_bytes(VALID)
    bad.write_bytes(VALID[:-1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_idx(good)
        with pytest.raises(ValueError, match="truncated"):
            read_idx(bad)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_unsupported_type_message_lists_the_formats_types(tmp_path):
    # The IDX format's element types: 0x08 ubyte, 0x09 byte, 0x0B short,
    # 0x0C int, 0x0D float, 0x0E double.
    path = tmp_path / "odd.idx"
    path.write_bytes(VALID[:2] + b"\x0a" + VALID[3:])
    message = (
        f"{path}: unsupported IDX element type 0x0A; supported types are 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        read_idx(path)


def test_shape_of_exactly_numpys_largest_size_is_not_refused_at_the_header():
    # 2**63 - 1 = 7**2 * 73 * 127 * 337 * 92737 * 649657 one-byte elements: the
    # largest array numpy can represent (it builds such a shape as a view),
    # so the header is accepted and the missing data is a truncation. Twice
    # 2**62 bytes is one byte more than numpy can represent: refused at the header.
    largest = (7, 7, 73, 127, 337, 92737, 649657)
    assert math.prod(largest) == np.iinfo(np.intp).max
    assert np.broadcast_to(np.uint8(0), largest).nbytes == np.iinfo(np.intp).max
    data = bytes([0, 0, 0x08, len(largest)]) + np.asarray(largest, ">u4").tobytes() + bytes(100)
    message = f"truncated IDX data: an array of shape {largest} needs {np.iinfo(np.intp).max} bytes, found only 100."
    with pytest.raises(ValueError, match=f"{re.escape(message)}$"):
        read_idx(io.BytesIO(data))
    beyond = (2**31, 2**31, 2)
    data = bytes([0, 0, 0x08, len(beyond)]) + np.asarray(beyond, ">u4").tobytes() + bytes(100)
    with pytest.raises(ValueError, match=re.escape(f"{2**63} bytes, which numpy cannot represent")):
        read_idx(io.BytesIO(data))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_trailing_bytes_are_refused_without_buffering_them(compress):
    # 32 MiB of zeros after a valid file (a few kB once compressed): one byte
    # of them is enough to refuse the file.
    data = VALID + bytes(32 << 20)
    stream = io.BytesIO(gzip.compress(data, compresslevel=1) if compress else data)
    del data
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="trailing bytes after the 12 bytes of data"):
            read_idx(stream)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"buffered {peak} bytes"


def test_one_trailing_byte_on_a_stream_still_open_is_refused_at_once():
    # A producer (a pipe, a socket) has sent a file and one stray byte and has
    # not closed: that byte is enough to refuse the file, without waiting for more.
    read_end, write_end = os.pipe()
    outcome = []

    def read():
        with open(read_end, "rb") as fh:
            try:
                read_idx(fh)
            except ValueError as exc:
                outcome.append(exc)

    try:
        os.write(write_end, VALID + b"\x00")
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=5)
        answered = not reader.is_alive()
    finally:
        os.close(write_end)
    reader.join()
    assert answered, "read_idx waited for more bytes after the stray one"
    assert len(outcome) == 1 and "trailing bytes" in str(outcome[0])


@pytest.mark.parametrize(
    "sizes",
    [[-1], [None], [], [0, -1], [0, 1, 0, None], [1, 4, -1], [3, 10], [2, -1]],
)
def test_replayed_prefix_reads_like_the_unread_stream(sizes):
    # read_idx sniffs two bytes, then reads through _Prefixed: any sequence of
    # reads (a size, 0, -1 or None for all, no argument) must return what the
    # stream would have returned had nothing been consumed.
    prefix, rest = b"\x1f\x8b", b"abcde"
    replayed, whole = _Prefixed(prefix, io.BytesIO(rest)), io.BytesIO(prefix + rest)
    for size in sizes:
        assert replayed.read(size) == whole.read(size)
    assert replayed.read() == whole.read()
