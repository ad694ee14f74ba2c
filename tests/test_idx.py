import gzip
import io

import numpy as np
import pytest

from sk_mnist.datasets import read_idx


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
