"""Hostile checkpoints: damaged, incomplete or malicious files, and temporaries left by a kill."""

import io
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist._checkpoint import FILENAME

PARAMS = {"max_epochs": 2, "early_stopping": True, "n_iter_no_change": 10, "random_state": 0}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, y = load_mnist("test", return_X_y=True, data_home=tmp_path_factory.mktemp("mnist"))
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def checkpoint(data, tmp_path_factory):
    """The bytes of the checkpoint of a finished two-epoch fit."""
    folder = tmp_path_factory.mktemp("fit")
    MNISTCNNClassifier(checkpoint_dir=folder, **PARAMS).fit(*data)
    return (folder / FILENAME).read_bytes()


def resume(folder, data):
    return MNISTCNNClassifier(checkpoint_dir=folder, resume=True, **PARAMS).fit(*data)


def flip_a_tensor_byte(checkpoint):
    """Flip the lowest bit of a byte in the middle of the largest tensor of a torch zip."""
    info = max(
        (i for i in zipfile.ZipFile(io.BytesIO(checkpoint)).infolist() if "/data/" in i.filename),
        key=lambda i: i.file_size,
    )
    assert info.compress_type == zipfile.ZIP_STORED
    # The data follow the member's local header: 30 bytes, its name and extra field.
    name_length, extra_length = struct.unpack(
        "<HH", checkpoint[info.header_offset + 26 : info.header_offset + 30]
    )
    at = info.header_offset + 30 + name_length + extra_length + info.file_size // 2
    return checkpoint[:at] + bytes([checkpoint[at] ^ 0x01]) + checkpoint[at + 1 :]


def test_flipped_tensor_byte_is_refused(data, checkpoint, tmp_path):
    (tmp_path / FILENAME).write_bytes(flip_a_tensor_byte(checkpoint))
    torch.load(tmp_path / FILENAME, weights_only=True)  # torch alone does not notice
    with pytest.raises(ValueError, match="fails its sha256 check: the checkpoint was damaged or modified"):
        resume(tmp_path, data)


@pytest.mark.parametrize("entry", ["fingerprint", "module", "rng"])
def test_missing_entry_is_refused(data, checkpoint, tmp_path, entry):
    state = torch.load(io.BytesIO(checkpoint), weights_only=True)
    del state[entry]
    torch.save(state, tmp_path / FILENAME)
    with pytest.raises(
        ValueError, match=rf"not a complete sk_mnist checkpoint: missing entries \['{entry}'\]"
    ):
        resume(tmp_path, data)


def test_consistent_state_that_does_not_fit_the_network_is_refused(data, checkpoint, tmp_path):
    from sk_mnist._checkpoint import state_digest

    state = torch.load(io.BytesIO(checkpoint), weights_only=True)
    del state["module"]["network.classifier.4.bias"]
    state["sha256"] = state_digest(state)  # a digest is no signature: anyone can recompute it
    torch.save(state, tmp_path / FILENAME)
    with pytest.raises(
        ValueError, match=r"(?s)does not fit the network being trained \(.*classifier\.4\.bias"
    ):
        resume(tmp_path, data)


class Payload:
    """Unpickling this creates ``path``: proof that code from the file ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_and_runs_nothing(data, tmp_path, writer):
    folder, marker = tmp_path / "ckpt", tmp_path / "ran"
    folder.mkdir()
    state = {"format": 2, "payload": Payload(marker)}
    with open(folder / FILENAME, "wb") as fh:
        torch.save(state, fh) if writer == "torch.save" else pickle.dump(state, fh, protocol=2)
    with pytest.raises(ValueError, match="is not a readable sk_mnist checkpoint"):
        resume(folder, data)
    assert not marker.exists()
    # The payload is live: an unrestricted load runs it.
    with open(folder / FILENAME, "rb") as fh:
        torch.load(fh, weights_only=False) if writer == "torch.save" else pickle.load(fh)
    assert marker.exists()


KILLED_WRITE = """
import os, signal, sys
from sk_mnist._files import atomic_write

def write(fh):
    fh.write(b"half a checkpoint")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)

atomic_write(sys.argv[1], write)
"""


def test_temporaries_of_a_killed_write_are_removed_when_a_fit_starts(data, tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(tmp_path / FILENAME)], check=False)
    assert killed.returncode == -9
    stale = list(tmp_path.glob(f".{FILENAME}.*.tmp"))
    assert len(stale) == 1 and stale[0].read_bytes() == b"half a checkpoint"
    others = [tmp_path / ".other.pt.abc.tmp", tmp_path / "notes.txt"]
    for path in others:
        path.write_text("not the checkpoint's")

    MNISTCNNClassifier(checkpoint_dir=tmp_path, **{**PARAMS, "max_epochs": 1}).fit(*data)
    assert not stale[0].exists()
    assert all(path.read_text() == "not the checkpoint's" for path in others)
    assert (tmp_path / FILENAME).exists()


@pytest.mark.parametrize("folder", ["/proc", "/proc/no/such/folder"], ids=["read-only", "uncreatable"])
def test_unwritable_checkpoint_dir_fails_before_training(folder, monkeypatch):
    # /proc refuses new files even to root, whom chmod would not stop.
    X = np.random.default_rng(0).integers(0, 256, (40, 64)).astype(np.uint8)
    y = np.arange(40) % 2
    monkeypatch.setattr(MNISTCNNClassifier, "fit_loop", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match=rf"checkpoint_dir '{folder}' cannot hold checkpoints"):
        MNISTCNNClassifier(max_epochs=1, checkpoint_dir=folder, random_state=0).fit(X, y)
