"""The model file's container: a zip of three members, a manifest and checksums.

It knows no estimator: it writes and reads back a JSON tree and a set of named
tensors, checking on the way in everything about the file itself (its members,
their sizes and sha256 checksums, the format version).
"""

import hashlib
import json
import os
import zipfile
import zlib

from .._files import atomic_write
from .._optional import require

FORMAT = "sk_mnist-model"
FORMAT_VERSION = 1
MANIFEST, ESTIMATOR, WEIGHTS = "manifest.json", "estimator.json", "weights.safetensors"
# Upper bounds on the decompressed JSON members, checked before they are read:
# a deflated member could otherwise expand to any size. The weights are stored
# uncompressed, so the file's own size bounds them.
_MAX_JSON_BYTES = {MANIFEST: 1 << 16, ESTIMATOR: 1 << 26}
# A fixed timestamp: saving the same model twice gives the same bytes.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_PICKLE_PROTOCOL_2_PLUS = 0x80


def _safetensors():
    return require("safetensors.torch", "persistence", "sk_mnist.persistence")


def write_model_file(path, tree, tensors):
    """Write ``tree`` (JSON) and ``tensors`` to ``path`` atomically, with their manifest."""
    from .. import __version__

    members = {ESTIMATOR: json.dumps(tree).encode(), WEIGHTS: _safetensors().save(tensors)}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sk_mnist_version": __version__,
        "estimator": tree["class"],
        "members": {
            name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in members.items()
        },
    }
    members = {MANIFEST: json.dumps(manifest, indent=1).encode(), **members}

    def write(fh):
        with zipfile.ZipFile(fh, "w") as archive:
            for name, data in members.items():
                info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_STORED if name == WEIGHTS else zipfile.ZIP_DEFLATED
                archive.writestr(info, data)

    atomic_write(path, write)


def read_model_file(path):
    """The JSON tree's bytes and the tensors of a model file, once the file itself checks out.

    Returns
    -------
    tree : bytes
        The ``estimator.json`` member, for :func:`parse_json`.
    tensors : dict of str to torch.Tensor
        The ``weights.safetensors`` member.
    version : str
        The version of sk_mnist that wrote the file.

    Raises
    ------
    ValueError
        Naming the file, if it is not a model file (a pickle, another archive,
        another format version) or is damaged.
    """
    safetensors_torch = _safetensors()
    name = os.fspath(path)
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head != b"PK\x03\x04":
            problem = "not an sk_mnist model file"
            if head[:1] == bytes([_PICKLE_PROTOCOL_2_PLUS]):
                problem += (
                    ": it looks like a pickle, which this function never loads (unpickling runs "
                    "code from the file); open it with joblib or pickle only if you trust its source"
                )
            raise refuse(name, f"{problem}.")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as archive:
                members = _read_members(archive, name)
        # OSError: a damaged directory can send zipfile seeking before the start.
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            EOFError,
            zlib.error,
            NotImplementedError,
            OSError,
        ) as exc:
            raise refuse(name, f"damaged model file: {exc}.") from exc
    version = _check_manifest(members, name)
    try:
        tensors = safetensors_torch.load(members[WEIGHTS])
    except Exception as exc:  # safetensors reports every malformation as its own error type
        raise refuse(name, f"unreadable {WEIGHTS}: {exc}.") from exc
    return members[ESTIMATOR], tensors, version


def refuse(name, problem):
    """The ValueError for the model file ``name``."""
    return ValueError(f"{name}: {problem}")


def parse_json(data, what):
    """Parse JSON, refusing duplicate keys (two readers could pick different ones)."""

    def unique(pairs):
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{what} repeats a key")
        return dict(pairs)

    return json.loads(data.decode("utf-8"), object_pairs_hook=unique)


def check_keys(mapping, required, where, optional=()):
    """Refuse a JSON value that is not an object with exactly these keys."""
    if not isinstance(mapping, dict):
        raise ValueError(f"{where} must be a JSON object")
    keys = set(mapping)
    if not set(required) <= keys <= {*required, *optional}:
        raise ValueError(f"{where} has keys {sorted(keys)}; expected {sorted(required)}")


def _read_members(archive, name):
    """The three members' bytes, read within limits, or a ValueError."""
    infos = archive.infolist()
    names = sorted(info.filename for info in infos)
    if names != sorted((MANIFEST, ESTIMATOR, WEIGHTS)):
        raise refuse(
            name,
            f"not an sk_mnist model file: it holds the members {names[:10]}, where a model file "
            f"holds exactly {MANIFEST}, {ESTIMATOR} and {WEIGHTS}.",
        )
    members = {}
    for info in infos:
        allowed = (
            (zipfile.ZIP_STORED,) if info.filename == WEIGHTS else (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        )
        if info.flag_bits & 0x1 or info.compress_type not in allowed:
            raise refuse(name, f"{info.filename} is encrypted or compressed in a way a model file never is.")
        if info.file_size > _MAX_JSON_BYTES.get(info.filename, float("inf")):
            raise refuse(
                name, f"{info.filename} declares {info.file_size} bytes, more than a model file holds."
            )
        # zipfile stops at the declared size and checks the CRC-32.
        members[info.filename] = archive.read(info)
    return members


def _check_manifest(members, name):
    """Check the manifest and the members' checksums; return the version of sk_mnist that wrote them."""
    from .. import __version__

    try:
        manifest = parse_json(members[MANIFEST], MANIFEST)
        check_keys(
            manifest, ("format", "format_version", "sk_mnist_version", "estimator", "members"), MANIFEST
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError are ValueErrors
        raise refuse(name, f"not an sk_mnist model file: unreadable {MANIFEST} ({exc}).") from exc
    if manifest["format"] != FORMAT:
        raise refuse(
            name, f"not an sk_mnist model file: its format is {manifest['format']!r}, not {FORMAT!r}."
        )
    version = manifest["format_version"]
    if version != FORMAT_VERSION:
        advice = (
            " Upgrade sk_mnist to read it." if isinstance(version, int) and version > FORMAT_VERSION else ""
        )
        raise refuse(
            name,
            f"model format version {version!r} is not supported: sk_mnist {__version__} reads "
            f"version {FORMAT_VERSION}.{advice}",
        )
    checksums = manifest["members"]
    for member in (ESTIMATOR, WEIGHTS):
        data = members[member]
        entry = checksums.get(member) if isinstance(checksums, dict) else None
        if entry != {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}:
            raise refuse(
                name,
                f"{member} fails its sha256 check against {MANIFEST}: the file was damaged or "
                "modified after it was saved.",
            )
    return manifest["sk_mnist_version"]
