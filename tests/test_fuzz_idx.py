"""Property-based fuzzing of the IDX reader.

Whatever bytes it is given, raw or gzip-compressed, ``read_idx`` must return
exactly the array a straightforward reference decoder finds there, or raise
``ValueError`` exactly when the reference finds no valid IDX file; it must
never raise anything else, and never allocate much more than the bytes really
present, whatever sizes the header claims. A few hundred cases run here;
``benchmarks/fuzz_idx.py`` runs the same property on many more.
"""

import gzip
import io
import math
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from sk_mnist.datasets import read_idx

hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMS = 8  # read_idx's documented limit
# Allocation allowed beyond a small multiple of the real data: one read chunk
# (1 MiB, which a buffered stream may allocate in full before filling it)
# plus zlib's state and Python's bookkeeping.
SLACK = (1 << 20) + (256 << 10)
FACTOR = 4  # chunks, their join and the final array each hold the payload once


def idx_bytes(type_code, shape, payload):
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def reference_decode(data):
    """Decode an IDX file the obvious way; raise anything on invalid input."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] or data[1] or data[2] not in DTYPES or not 1 <= data[3] <= MAX_DIMS:
        raise ValueError("bad header")
    n_dims = data[3]
    shape = struct.unpack(f">{n_dims}I", data[4 : 4 + 4 * n_dims])
    dtype = np.dtype(DTYPES[data[2]])
    payload = data[4 + 4 * n_dims :]
    if len(payload) != math.prod(shape) * dtype.itemsize:
        raise ValueError("payload length")
    np.frombuffer(payload, dtype).reshape(shape)  # some empty shapes are beyond numpy
    return shape, dtype, payload


def inflated_size(data, step=64):
    """Bytes a gzip stream yields before it ends or breaks, fed in small steps."""
    total = 0
    while data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            for start in range(0, len(data), step):
                total += len(inflater.decompress(data[start : start + step]))
                if inflater.eof:
                    break
        except zlib.error:
            return total
        if not inflater.eof:
            return total
        data = inflater.unused_data.lstrip(b"\x00")
    return total


def check_read_idx(data):
    """The fuzzing property; returns "array" or "ValueError" for the statistics."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        result = read_idx(io.BytesIO(data))
    except ValueError as exc:
        result = exc
    peak = tracemalloc.get_traced_memory()[1] - before
    present = max(len(data), inflated_size(data))
    assert peak <= FACTOR * present + SLACK, f"allocated {peak} bytes for {present} bytes present"

    try:
        expected = reference_decode(data)
    except Exception:  # the reference is naive: any failure means not a valid file
        expected = None
    if isinstance(result, ValueError):
        assert expected is None, f"valid IDX data refused: {result}"
        return "ValueError"
    assert expected is not None, "invalid data accepted"
    shape, dtype, payload = expected
    assert result.shape == shape and result.dtype == dtype.newbyteorder("=")
    assert result.astype(dtype).tobytes() == payload
    return "array"


@st.composite
def valid_idx(draw):
    type_code = draw(st.sampled_from(sorted(DTYPES)))
    shape = draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))
    size = math.prod(shape) * np.dtype(DTYPES[type_code]).itemsize
    return idx_bytes(type_code, shape, draw(st.binary(min_size=size, max_size=size)))


@st.composite
def hostile_header(draw):
    """A header of any type code, dimension count and (possibly enormous) sizes, then a few bytes."""
    type_code = draw(st.one_of(st.sampled_from(sorted(DTYPES)), st.integers(0, 255)))
    shape = draw(st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=10))
    return idx_bytes(type_code, shape, draw(st.binary(max_size=64)))


@st.composite
def mutated(draw, base):
    """Flip, overwrite, insert, delete or truncate bytes of ``base``."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            data[at : at + 4] = draw(st.binary(min_size=1, max_size=4))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


def gzipped(base):
    return base.map(lambda data: gzip.compress(data, mtime=0))


#: Raw and gzip inputs: random bytes, valid files, hostile headers, and
#: mutations of valid files before and after compression.
idx_inputs = st.one_of(
    st.binary(max_size=256),
    gzipped(st.binary(max_size=256)),
    valid_idx(),
    gzipped(valid_idx()),
    hostile_header(),
    gzipped(hostile_header()),
    mutated(valid_idx()),
    gzipped(mutated(valid_idx())),
    mutated(gzipped(valid_idx())),
)


@pytest.fixture(scope="module", autouse=True)
def traced():
    tracemalloc.start()
    yield
    tracemalloc.stop()


@hypothesis.settings(max_examples=300, deadline=None, database=None, derandomize=True)
@hypothesis.given(idx_inputs)
# Found by benchmarks/fuzz_idx.py: an empty array with dimensions numpy cannot index.
@hypothesis.example(bytes.fromhex("00000b04c699a3399e1c91f20000000000000001"))
def test_read_idx_returns_the_array_or_raises_value_error(data):
    check_read_idx(data)


@pytest.mark.parametrize("compress", [False, True])
def test_enormous_header_is_not_allocated(compress):
    # 8 dimensions of 2**32 - 1 float64s claimed: far beyond any memory.
    data = idx_bytes(0x0E, [2**32 - 1] * MAX_DIMS, bytes(1000))
    data = gzip.compress(data) if compress else data
    assert check_read_idx(data) == "ValueError"


def test_the_oracle_agrees_on_known_files():
    # The property is only as good as its reference decoder and memory probe.
    valid = idx_bytes(0x08, [2, 3], bytes(range(6)))
    assert check_read_idx(valid) == check_read_idx(gzip.compress(valid)) == "array"
    assert check_read_idx(valid[:-1]) == check_read_idx(gzip.compress(valid)[:-3]) == "ValueError"
    assert inflated_size(gzip.compress(valid) * 2) == 2 * len(valid)
