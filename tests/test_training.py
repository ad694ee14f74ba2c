"""The training plumbing: devices, precision, batches, the validation split and score."""

import math

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset

from sk_mnist._training import (
    InMemoryBatches,
    _targets_and_weights,
    _valid_accuracy,
    check_device,
    resolve_device,
    resolve_precision,
    stratified_split,
)


def labels(*counts):
    """Labels 0, 1, ... with the given number of samples each, shuffled."""
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(0).permutation(y)


@pytest.mark.parametrize(
    "y, fraction",
    [
        (labels(2, 2, 2), 0.5),  # two samples per class: one on each side
        (labels(2, 0, 5), 0.4),  # a label with no sample is not a class to hold out
        (labels(4, 4, 4), 0.25),  # exactly one validation sample per class
        (labels(4, 4, 4), 0.75),  # exactly one training sample per class
    ],
    ids=["two-per-class", "absent-label", "one-per-class-held-out", "one-per-class-kept"],
)
def test_split_at_the_edge_of_possible(y, fraction):
    train, valid = stratified_split(y, fraction, generator_seed=0)
    assert len(valid) == math.ceil(fraction * len(y))
    np.testing.assert_array_equal(np.sort(np.concatenate([train, valid])), np.arange(len(y)))
    present = np.unique(y)
    np.testing.assert_array_equal(np.unique(y[train]), present)
    np.testing.assert_array_equal(np.unique(y[valid]), present)


@pytest.mark.parametrize(
    "y, fraction",
    [
        (labels(1, 5, 5), 0.5),  # a class of one sample cannot be on both sides
        (labels(5, 1, 0, 5), 0.5),  # even beside a label with no samples
        (labels(4, 4, 4), 0.16),  # 2 validation samples for 3 classes
        (labels(4, 4, 4), 0.84),  # 2 training samples for 3 classes
    ],
    ids=["single-sample-class", "single-sample-class-and-gap", "too-few-held-out", "too-few-kept"],
)
def test_no_split_when_some_class_cannot_be_on_both_sides(y, fraction):
    assert stratified_split(y, fraction, generator_seed=0) is None


def test_split_is_stratified_and_seeded():
    y = labels(30, 60, 90)
    train, valid = stratified_split(y, 0.2, generator_seed=3)
    np.testing.assert_array_equal(np.bincount(y[valid]), [6, 12, 18])
    again = stratified_split(y, 0.2, generator_seed=3)
    np.testing.assert_array_equal(valid, again[1])
    assert not np.array_equal(np.sort(valid), np.sort(stratified_split(y, 0.2, generator_seed=4)[1]))


def test_split_stratifies_unlabelled_samples_as_a_group_of_their_own():
    y = np.concatenate([labels(10, 10), np.full(80, -1)])
    train, valid = stratified_split(y, 0.1, generator_seed=0)
    assert sorted(y[valid].tolist()) == [-1] * 8 + [0, 1]


class Logits:
    """A stand-in network whose forward pass returns fixed logits for the rows it is given."""

    def __init__(self, logits):
        self.logits = np.asarray(logits, dtype=np.float32)

    def forward(self, X):
        return torch.as_tensor(self.logits[X])


def test_valid_accuracy_is_the_share_of_rows_whose_top_logit_is_their_class():
    net = Logits([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.5, 0.0, 0.7], [1.0, 0.0, 0.0]])
    # The top logits are those of classes 0, 1, 2 and 0: the last row is wrong.
    targets = np.array([0, 1, 2, 2])
    assert _valid_accuracy(net, np.arange(4), np.column_stack([targets, np.ones(4)])) == 0.75
    assert _valid_accuracy(net, np.array([3]), np.array([[0, 1.0]])) == 1.0
    # Weighted: the wrong row weighs 3 of 6.
    assert _valid_accuracy(net, np.arange(4), np.column_stack([targets, [1, 1, 1, 3]])) == 0.5
    # A validation set of zero weights is scored unweighted.
    assert _valid_accuracy(net, np.arange(4), np.column_stack([targets, np.zeros(4)])) == 0.75
    # Unlabelled rows (-1) are not scored, right or wrong.
    assert _valid_accuracy(net, np.arange(4), np.column_stack([[0, -1, 1, -1], np.ones(4)])) == 0.5
    assert _valid_accuracy(net, np.arange(4), np.column_stack([[0, 1, -1, -1], [1, 1, 5, 5]])) == 1.0


def test_targets_and_weights_are_the_columns_of_one_array():
    batch = (torch.tensor([3, 1]), torch.tensor([0.5, 2.0]))
    np.testing.assert_array_equal(_targets_and_weights(batch), [[3, 0.5], [1, 2.0]])


def no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def cuda_devices(monkeypatch, count):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_device_is_cuda_where_present_else_the_cpu(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto") == ("cuda" if cuda else "cpu")
    # Anything else is the user's choice, passed on as given.
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("device", ["auto", "cpu", "cpu:0", "meta", torch.device("cpu")])
def test_devices_every_machine_has_are_accepted(monkeypatch, device):
    no_accelerators(monkeypatch)
    assert check_device(device, "Owner") is None


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps"])
def test_a_missing_accelerator_is_refused_with_its_name(monkeypatch, device):
    no_accelerators(monkeypatch)
    kind = device.split(":")[0]
    message = (
        f"The 'device' parameter of Owner is {device!r}, but this machine has no {kind} device; "
        "use 'auto' to take one when present and the CPU otherwise."
    )
    with pytest.raises(ValueError) as caught:
        check_device(device, "Owner")
    assert str(caught.value) == message


def test_cuda_devices_are_counted_from_zero(monkeypatch):
    cuda_devices(monkeypatch, 2)
    for device in ["cuda", "cuda:0", "cuda:1", "cpu"]:
        assert check_device(device, "Owner") is None
    with pytest.raises(ValueError) as caught:
        check_device("cuda:2", "Owner")
    assert str(caught.value) == (
        "The 'device' parameter of Owner is 'cuda:2', but this machine has 2 CUDA device(s)."
    )


@pytest.mark.parametrize("device", ["gpu", "cuda:x", 3.5])
def test_what_torch_does_not_know_is_not_a_device(device):
    with pytest.raises(ValueError) as caught:
        check_device(device, "Owner")
    assert str(caught.value) == (
        "The 'device' parameter of Owner must be 'auto' or a torch device such as 'cpu' or 'cuda:0'; "
        f"got {device!r}."
    )


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_chosen_precision_is_kept(precision):
    assert resolve_precision(precision, "cpu") == precision
    assert resolve_precision(precision, "cuda") == precision


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_on_cuda_asks_for_native_bfloat16(monkeypatch, native):
    asked = []

    def is_bf16_supported(including_emulation=True):
        asked.append(including_emulation)
        return native

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert resolve_precision("auto", "cuda:0") == ("bfloat16" if native else "float32")
    # Emulated bfloat16 is slower than float32: only native support counts.
    assert asked == [False]


@pytest.mark.parametrize(
    "onednn, instructions, expected",
    [(True, True, "bfloat16"), (True, False, "float32"), (False, True, "float32"), (False, False, "float32")],
)
def test_auto_precision_on_the_cpu_needs_onednn_and_bfloat16_instructions(
    monkeypatch, onednn, instructions, expected
):
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: onednn)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: instructions)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda **kwargs: pytest.fail("asked CUDA"))
    assert resolve_precision("auto", "cpu") == expected


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("with_y", [False, True])
def test_batches_are_delivered_on_the_requested_device(shuffle, with_y):
    X, y = torch.arange(10.0).reshape(5, 2), (torch.arange(5), torch.ones(5))
    batches = list(InMemoryBatches(Dataset(X, y if with_y else None), 2, shuffle, "meta"))
    assert [Xb.shape for Xb, _ in batches] == [(2, 2), (2, 2), (1, 2)]
    assert {Xb.device.type for Xb, _ in batches} == {"meta"}
    if with_y:
        assert {part.device.type for _, yb in batches for part in yb} == {"meta"}
        assert [[part.shape for part in yb] for _, yb in batches] == [
            [(2,), (2,)],
            [(2,), (2,)],
            [(1,), (1,)],
        ]
    else:
        assert all(yb is None for _, yb in batches)
