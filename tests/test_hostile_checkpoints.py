"""Hostile checkpoints: damaged, incomplete or malicious files, and temporaries left by a kill."""

import io
import pickle
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist._checkpoint import FILENAME, read_checkpoint, state_digest

PARAMS = {"max_epochs": 2, "early_stopping": True, "n_iter_no_change": 10, "random_state": 0}
# How every refusal of a checkpoint ends.
AFRESH = "Delete it, or fit with resume=False, to start afresh."


def whole(message):
    """A pattern matching exactly ``message``."""
    return f"^{re.escape(message)}$"


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


def assert_resume_refused(folder, data, reason):
    """Resuming from ``folder`` raises exactly: the checkpoint, ``reason``, how to start afresh."""
    with pytest.raises(ValueError, match=whole(f"{folder / FILENAME} {reason} {AFRESH}")):
        resume(folder, data)


def load_state(checkpoint):
    """The entries of a checkpoint's bytes, to edit."""
    return torch.load(io.BytesIO(checkpoint), weights_only=True)


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
    reason = "fails its sha256 check: the checkpoint was damaged or modified after it was written."
    assert_resume_refused(tmp_path, data, reason)


@pytest.mark.parametrize("entry", ["fingerprint", "module", "rng"])
def test_missing_entry_is_refused(data, checkpoint, tmp_path, entry):
    state = load_state(checkpoint)
    del state[entry]
    torch.save(state, tmp_path / FILENAME)
    with pytest.raises(
        ValueError, match=rf"not a complete sk_mnist checkpoint: missing entries \['{entry}'\]"
    ):
        resume(tmp_path, data)


def test_consistent_state_that_does_not_fit_the_network_is_refused(data, checkpoint, tmp_path):
    from sk_mnist._checkpoint import state_digest

    state = load_state(checkpoint)
    del state["module"]["network.classifier.4.bias"]
    state["sha256"] = state_digest(state)  # a digest is no signature: anyone can recompute it
    torch.save(state, tmp_path / FILENAME)
    head = f"{tmp_path / FILENAME} does not fit the network being trained ("
    with pytest.raises(
        ValueError, match=rf"(?s)^{re.escape(head)}.*classifier\.4\.bias.*\)\. {re.escape(AFRESH)}$"
    ):
        resume(tmp_path, data)


def test_moving_average_that_does_not_fit_the_network_is_refused(data, tmp_path):
    params = {**PARAMS, "ema_decay": 0.9}
    MNISTCNNClassifier(checkpoint_dir=tmp_path, **params).fit(*data)
    state = torch.load(tmp_path / FILENAME, weights_only=True)
    del state["weight_average"]["module.network.classifier.4.bias"]
    state["sha256"] = state_digest(state)
    torch.save(state, tmp_path / FILENAME)
    head = f"{tmp_path / FILENAME} does not fit the network being trained ("
    with pytest.raises(
        ValueError, match=rf"(?s)^{re.escape(head)}.*classifier\.4\.bias.*\)\. {re.escape(AFRESH)}$"
    ):
        MNISTCNNClassifier(checkpoint_dir=tmp_path, resume=True, **params).fit(*data)


def test_moving_average_without_ema_decay_is_refused(data, checkpoint, tmp_path):
    state = load_state(checkpoint)
    state["weight_average"] = {"n_averaged": torch.tensor(1)}
    state["sha256"] = state_digest(state)
    torch.save(state, tmp_path / FILENAME)
    reason = (
        "does not fit the network being trained (it holds a moving average of the weights, "
        "but ema_decay is None)."
    )
    assert_resume_refused(tmp_path, data, reason)


class Payload:
    """Unpickling this creates ``path``: proof that code from the file ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def malicious_checkpoint(tmp_path, writer):
    """A checkpoint folder whose file runs a Payload when unpickled; returns it and the marker."""
    folder, marker = tmp_path / "ckpt", tmp_path / "ran"
    folder.mkdir()
    state = {"format": 2, "payload": Payload(marker)}
    with open(folder / FILENAME, "wb") as fh:
        torch.save(state, fh) if writer == "torch.save" else pickle.dump(state, fh, protocol=2)
    return folder, marker


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_and_runs_nothing(data, tmp_path, writer):
    folder, marker = malicious_checkpoint(tmp_path, writer)
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


@pytest.mark.parametrize(
    "content", [{"fingerprint": "0" * 64}, ["format", 2], "format"], ids=["dict", "list", "str"]
)
def test_content_without_a_format_entry_is_refused(data, tmp_path, content):
    # A list or string holding "format" has no format entry either.
    torch.save(content, tmp_path / FILENAME)
    assert_resume_refused(tmp_path, data, "is not a readable sk_mnist checkpoint (no format entry).")


@pytest.mark.parametrize("version", [1, 4, "3", 3.0, True])
def test_checkpoint_of_another_format_is_refused(data, checkpoint, tmp_path, version):
    state = load_state(checkpoint)
    state["format"] = version
    if version == 1:
        del state["sha256"]  # format 1 had no digest
    torch.save(state, tmp_path / FILENAME)
    reason = f"has an unknown checkpoint format {version!r}; this sk_mnist reads formats [2, 3]."
    assert_resume_refused(tmp_path, data, reason)


def test_format_2_checkpoint_still_resumes(data, checkpoint, tmp_path):
    # Format 2, written before the moving average of the weights existed, is
    # the same checkpoint without its "weight_average" entry.
    state = load_state(checkpoint)
    assert state["format"] == 3 and state["weight_average"] is None
    del state["weight_average"]
    state["format"] = 2
    state["sha256"] = state_digest(state)
    torch.save(state, tmp_path / FILENAME)
    resumed = resume(tmp_path, data)
    expected = resume_from_bytes(checkpoint, tmp_path / "format3", data)
    assert resumed.n_iter_ == expected.n_iter_ == PARAMS["max_epochs"]
    for name, value in resumed.module_.state_dict().items():
        assert torch.equal(value, expected.module_.state_dict()[name]), name


def test_format_3_checkpoint_without_its_average_is_incomplete(data, checkpoint, tmp_path):
    state = load_state(checkpoint)
    del state["weight_average"]
    state["sha256"] = state_digest(state)
    torch.save(state, tmp_path / FILENAME)
    reason = (
        "is not a complete sk_mnist checkpoint: missing entries ['weight_average'], unexpected entries []."
    )
    assert_resume_refused(tmp_path, data, reason)


def resume_from_bytes(checkpoint, folder, data):
    folder.mkdir()
    (folder / FILENAME).write_bytes(checkpoint)
    return resume(folder, data)


def test_missing_and_unexpected_entries_are_named(data, checkpoint, tmp_path):
    state = load_state(checkpoint)
    del state["rng"], state["seed"]
    state["payload"], state[3] = "extra", None
    torch.save(state, tmp_path / FILENAME)
    # Both lists sorted; the unexpected keys by their repr, as they may be of any type.
    reason = (
        "is not a complete sk_mnist checkpoint: missing entries ['rng', 'seed'], "
        "unexpected entries [\"'payload'\", '3']."
    )
    assert_resume_refused(tmp_path, data, reason)


def test_refusals_of_a_foreign_or_unreadable_checkpoint_say_how_to_start_afresh(data, checkpoint, tmp_path):
    (tmp_path / FILENAME).write_bytes(checkpoint)
    X, y = data
    reason = (
        "was written by a fit on other data or with other parameters; resume needs the same data "
        "and parameters."
    )
    assert_resume_refused(tmp_path, (X[1:], y[1:]), reason)
    (tmp_path / FILENAME).write_bytes(b"not a checkpoint")
    with pytest.raises(
        ValueError,
        match=rf"(?s)^{re.escape(str(tmp_path / FILENAME))} is not a readable "
        rf"sk_mnist checkpoint \(.+\)\. {re.escape(AFRESH)}$",
    ):
        resume(tmp_path, data)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_even_where_torch_defaults_to_unrestricted_loads(
    data, tmp_path, writer, monkeypatch
):
    # This variable makes torch.load unrestricted wherever weights_only is not
    # passed: the checkpoint must still be read with weights_only=True.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    folder, marker = malicious_checkpoint(tmp_path, writer)
    with pytest.raises(ValueError, match="is not a readable sk_mnist checkpoint"):
        resume(folder, data)
    assert not marker.exists()


def test_checkpoint_written_on_a_gpu_is_read_onto_the_cpu(data, checkpoint, tmp_path, monkeypatch):
    """A checkpoint whose tensors were saved from CUDA memory loads, and resumes, anywhere."""
    state = load_state(checkpoint)
    # Tag every storage as torch does for tensors in the memory of the first GPU.
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    torch.save(state, tmp_path / FILENAME)
    monkeypatch.undo()

    loaded = read_checkpoint(tmp_path, [state["fingerprint"]])
    tensors = [
        *loaded["module"].values(),
        loaded["rng"],
        *loaded["early_stopping"]["best_model_weights_"].values(),
    ]
    assert tensors and all(tensor.device == torch.device("cpu") for tensor in tensors)
    resumed = resume(tmp_path, data)  # a finished fit: nothing left to train
    assert resumed.n_iter_ == PARAMS["max_epochs"]
    for name, weights in state["module"].items():
        assert torch.equal(resumed.module_.state_dict()[name].cpu(), weights), name


def tiny_data():
    """40 random 8x8 images of two classes: a fit of one epoch takes a moment."""
    X = np.random.default_rng(0).integers(0, 256, (40, 64)).astype(np.uint8)
    return X, np.arange(40) % 2


def test_missing_checkpoint_dir_is_created_with_its_parents(tmp_path):
    folder = tmp_path / "runs" / "mnist" / "first"
    MNISTCNNClassifier(max_epochs=1, checkpoint_dir=folder, random_state=0).fit(*tiny_data())
    assert (folder / FILENAME).is_file()


def test_temporaries_removed_meanwhile_by_another_fit_are_no_error(tmp_path, monkeypatch):
    """Two fits starting in one folder may both find a stale temporary; the second to remove it goes on."""
    stale = tmp_path / f".{FILENAME}.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    glob = Path.glob

    def glob_then_lose_the_race(self, pattern, **kwargs):
        found = list(glob(self, pattern, **kwargs))
        if pattern.startswith(f".{FILENAME}."):
            for path in found:
                path.unlink()  # the other fit got there first
        return iter(found)

    monkeypatch.setattr(Path, "glob", glob_then_lose_the_race)
    MNISTCNNClassifier(max_epochs=1, checkpoint_dir=tmp_path, random_state=0).fit(*tiny_data())
    assert not stale.exists()
    assert (tmp_path / FILENAME).is_file()
