"""A strict reader for the IDX file format in which MNIST is distributed.

The format (LeCun et al.): a 4-byte big-endian magic number whose first two
bytes are zero, whose third byte is the element type and whose fourth byte is
the number of dimensions; then one big-endian uint32 size per dimension; then
the elements, row-major, big-endian.

The reader trusts nothing in the header: memory is only ever allocated for
bytes that are really present in the input, so a header claiming enormous
dimensions costs nothing, and every inconsistency is a ``ValueError`` that names
the file and the problem.
"""

import gzip
import io
import os
import zlib

import numpy as np

__all__ = ["read_idx"]

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
# The format has no limit, but more than this many dimensions is not a data set.
_MAX_DIMS = 8
_CHUNK = 1 << 20
# The most bytes one numpy array can hold: its size must fit numpy's index type.
_MAX_ARRAY_BYTES = np.iinfo(np.intp).max


def _read_exactly(stream, n_bytes, name, what):
    """Read ``n_bytes`` from ``stream``, growing only as real data arrives."""
    chunks = []
    remaining = n_bytes
    while remaining > 0:
        chunk = stream.read(min(remaining, _CHUNK))
        if not chunk:
            raise ValueError(
                f"{name}: truncated IDX data: {what} needs {n_bytes} bytes, found only {n_bytes - remaining}."
            )
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _parse(stream, name):
    magic = _read_exactly(stream, 4, name, "the magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise ValueError(
            f"{name}: not an IDX file: the magic number {magic.hex()} does not start with two zero bytes."
        )
    type_code, n_dims = magic[2], magic[3]
    if type_code not in _IDX_DTYPES:
        supported = ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES)
        raise ValueError(
            f"{name}: unsupported IDX element type 0x{type_code:02X}; supported types are {supported}."
        )
    if not 1 <= n_dims <= _MAX_DIMS:
        raise ValueError(f"{name}: IDX header declares {n_dims} dimensions; expected 1 to {_MAX_DIMS}.")
    dims = tuple(
        int(d)
        for d in np.frombuffer(_read_exactly(stream, 4 * n_dims, name, "the dimension sizes"), dtype=">u4")
    )
    dtype = _IDX_DTYPES[type_code]
    n_bytes = int(np.prod(dims, dtype=object)) * dtype.itemsize
    if n_bytes > _MAX_ARRAY_BYTES:
        # Refused now: a gzip stream could otherwise inflate gigabytes into
        # the buffer before running out, for an array that cannot exist.
        raise ValueError(
            f"{name}: IDX header declares shape {dims}, {n_bytes} bytes, which numpy cannot "
            f"represent (at most {_MAX_ARRAY_BYTES} bytes)."
        )
    payload = _read_exactly(stream, n_bytes, name, f"an array of shape {dims}")
    if stream.read(1):
        raise ValueError(
            f"{name}: trailing bytes after the {n_bytes} bytes of data that the "
            f"IDX header (shape {dims}) declares."
        )
    try:
        array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    except ValueError as exc:
        # An empty array whose other dimensions overflow numpy's index type.
        raise ValueError(
            f"{name}: IDX header declares shape {dims}, which numpy cannot represent ({exc})."
        ) from exc
    return array.astype(dtype.newbyteorder("="))


def _open(path_or_fileobj):
    if hasattr(path_or_fileobj, "read"):
        name = getattr(path_or_fileobj, "name", repr(path_or_fileobj))
        # Refused before reading: decoding IDX bytes as text fails or mangles them.
        if isinstance(path_or_fileobj, io.TextIOBase):
            raise _text_mode_error(name, "a text-mode file object")
        return path_or_fileobj, name, False
    return open(path_or_fileobj, "rb"), os.fspath(path_or_fileobj), True


def _text_mode_error(name, what):
    return TypeError(f"{name}: read_idx needs a binary file object (opened with 'rb'); got {what}.")


def read_idx(path_or_fileobj):
    """Read an IDX file, gzip-compressed or raw, into a numpy array.

    Parameters
    ----------
    path_or_fileobj : str, path-like or binary file object
        The file to read. Gzip compression is detected from the content,
        not from the file name.

    Returns
    -------
    array : ndarray
        The array, with the shape the header declares and the element type it
        names (``uint8`` for MNIST), in native byte order.

    Raises
    ------
    TypeError
        If ``path_or_fileobj`` is a file object in text mode: the format is
        binary.
    ValueError
        If the input is not a well-formed IDX file: a wrong magic number, an
        unsupported element type, a number of dimensions outside 1-8, a shape
        too large for any numpy array (refused at the header), fewer bytes
        than the dimensions require (truncation), bytes after the data, or a
        corrupt gzip stream. The message names the file and the problem.

    See Also
    --------
    load_mnist : Load the bundled MNIST data set, verified and cached.

    Examples
    --------
    >>> import io
    >>> from sk_mnist.datasets import read_idx
    >>> raw = bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))
    >>> read_idx(io.BytesIO(raw))
    array([[0, 1, 2],
           [3, 4, 5]], dtype=uint8)
    """
    stream, name, owned = _open(path_or_fileobj)
    try:
        # Sniff the compression from the content; the two bytes are replayed
        # so that non-seekable streams work too.
        head = stream.read(2)
        if not isinstance(head, (bytes, bytearray)):
            raise _text_mode_error(name, f"one whose read() returns {type(head).__name__}")
        source = _Prefixed(head, stream)
        if head == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=source, mode="rb") as gz:
                try:
                    return _parse(gz, name)
                except (OSError, EOFError, zlib.error) as exc:
                    raise ValueError(f"{name}: corrupt gzip stream: {exc}") from exc
        return _parse(source, name)
    finally:
        if owned:
            stream.close()


class _Prefixed:
    """A read-only stream that first replays bytes already consumed."""

    def __init__(self, prefix, stream):
        self._prefix = prefix
        self._stream = stream

    def read(self, size=-1):
        if not self._prefix:
            return self._stream.read(size)
        if size is None or size < 0:
            data, self._prefix = self._prefix + self._stream.read(), b""
            return data
        data, self._prefix = self._prefix[:size], self._prefix[size:]
        if len(data) < size:
            data += self._stream.read(size - len(data))
        return data
