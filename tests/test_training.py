"""The training plumbing: the validation split and the validation score."""

import math

import numpy as np
import pytest
import torch

from sk_mnist._training import _valid_accuracy, stratified_split


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


class Logits:
    """A stand-in network whose forward pass returns fixed logits for the rows it is given."""

    def __init__(self, logits):
        self.logits = np.asarray(logits, dtype=np.float32)

    def forward(self, X):
        return torch.as_tensor(self.logits[X])


def test_valid_accuracy_is_the_share_of_rows_whose_top_logit_is_their_class():
    net = Logits([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.5, 0.0, 0.7], [1.0, 0.0, 0.0]])
    # The top logits are those of classes 0, 1, 2 and 0: the last row is wrong.
    assert _valid_accuracy(net, np.arange(4), np.array([0, 1, 2, 2])) == 0.75
    assert _valid_accuracy(net, np.array([3]), np.array([0])) == 1.0
