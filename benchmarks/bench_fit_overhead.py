"""What the estimator costs over a hand-written PyTorch loop, and what its speed levers buy.

Usage: python benchmarks/bench_fit_overhead.py [--n-images 60000] [--rounds 5]

In one process, alternating A B C D A B C D ... so that a noisy machine
hurts all sides alike:

A. ``MNISTCNNClassifier`` with the plain LeNet (``architecture="lenet",
   batch_norm=False, augment=False``) in float32, plain Adam (``weight_decay=0``)
   and plain cross-entropy (``label_smoothing=0``), as in B, batch 128, 1 epoch;
B. a hand-written loop of the same network: tensors in memory, ``randperm``
   batches of 128, Adam, cross-entropy;
C. the same hand-written loop with the estimator's one training lever,
   channels-last memory order for images and weights;
D. A with the recipe's augmentation (``augment=True``).

A / C is what the wrapper itself costs (same arithmetic); A / B is what the
estimator gives over the plain loop, lever included; D / A - 1 is what
augmentation adds to an epoch. A's time includes everything ``fit`` does
(input validation, pixel statistics, building the network); B's and C's
start after their images are converted and standardized. Then inference,
in images per second: ``predict_proba`` on the 10,000 test images by A's
model and by a model of the default recipe (batch norm on), the latter
also with its inference lever switched off (batch norm not folded into the
convolutions), against a plain loop over batches of 1,000.
"""

import argparse
import statistics
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from sk_mnist import MNISTCNNClassifier, load_mnist, modules
from sk_mnist.modules import LeNet

PLAIN = {
    "architecture": "lenet",
    "precision": "float32",
    "lr": 1e-3,
    "batch_norm": False,
    "augment": False,
    "early_stopping": False,
    "weight_decay": 0.0,
    "label_smoothing": 0.0,
    "max_epochs": 1,
    "batch_size": 128,
    "random_state": 0,
}


def estimator_epoch(X, y, **changes):
    clf = MNISTCNNClassifier(**{**PLAIN, **changes})
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start, clf


def plain_epoch(X, y, channels_last=False):
    torch.manual_seed(0)
    images = torch.from_numpy(X).float().div_(255).reshape(-1, 1, 28, 28)
    images = (images - images.mean()) / images.std()
    targets = torch.from_numpy(y)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    images = images.contiguous(memory_format=memory_format)
    start = time.perf_counter()
    net = LeNet().to(memory_format=memory_format)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    order = torch.randperm(len(images))
    for begin in range(0, len(images), 128):
        rows = order[begin : begin + 128]
        optimizer.zero_grad()
        F.cross_entropy(net(images[rows]), targets[rows]).backward()
        optimizer.step()
    return time.perf_counter() - start, net


def plain_predict(net, X):
    images = torch.from_numpy(X).float().div_(255).reshape(-1, 1, 28, 28)
    net.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        torch.cat([torch.softmax(net(images[i : i + 1000]), 1) for i in range(0, len(images), 1000)])
    return time.perf_counter() - start


@contextmanager
def batch_norm_unfolded():
    """Evaluate the networks' convolutional layers one by one, as a plain ``nn.Sequential``."""
    folded = modules._Features.forward
    modules._Features.forward = nn.Sequential.forward
    try:
        yield
    finally:
        modules._Features.forward = folded


def images_per_second(clf, X):
    start = time.perf_counter()
    clf.predict_proba(X)
    return len(X) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    X, y = load_mnist("train", return_X_y=True)
    X, y = X[: args.n_images], y[: args.n_images]
    X_test, _ = load_mnist("test", return_X_y=True)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(X)} images, {args.rounds} rounds"
    )

    # Warm-up: the first fit of a process pays for oneDNN's kernel set-up.
    estimator_epoch(X[:2000], y[:2000])
    plain_epoch(X[:2000], y[:2000])
    plain_epoch(X[:2000], y[:2000], channels_last=True)
    # Only its speed matters here: a short fit gives the default recipe's network.
    recipe = MNISTCNNClassifier(max_epochs=1, random_state=0).fit(X[:2000], y[:2000])
    a_times, b_times, c_times, d_times = [], [], [], []
    predict = {"A's model": [], "default recipe": [], "default recipe, unfolded": [], "plain loop": []}
    for _ in range(args.rounds):
        seconds, clf = estimator_epoch(X, y)
        a_times.append(seconds)
        seconds, net = plain_epoch(X, y)
        b_times.append(seconds)
        c_times.append(plain_epoch(X, y, channels_last=True)[0])
        d_times.append(estimator_epoch(X, y, augment=True)[0])
        predict["A's model"].append(images_per_second(clf, X_test))
        predict["default recipe"].append(images_per_second(recipe, X_test))
        with batch_norm_unfolded():
            predict["default recipe, unfolded"].append(images_per_second(recipe, X_test))
        predict["plain loop"].append(len(X_test) / plain_predict(net, X_test))

    sides = {
        "(A) MNISTCNNClassifier": a_times,
        "(B) hand-written loop": b_times,
        "(C) hand-written loop, channels-last": c_times,
        "(D) MNISTCNNClassifier, augment=True": d_times,
    }
    for label, times in sides.items():
        rounds = [round(t, 2) for t in times]
        print(f"{label + ', 1 epoch:':<48} median {statistics.median(times):.2f} s  {rounds}")
    a, b, c, d = (statistics.median(times) for times in sides.values())
    print(f"wrapper cost A / C: {a / c:.3f}; estimator over the plain loop A / B: {a / b:.3f}")
    print(f"augmentation: D / A - 1 = {d / a - 1:.1%} of an epoch")
    print("predict_proba on the 10,000 test images (plain loop: batches of 1,000, A's network):")
    for label, rates in predict.items():
        rounds = [round(r) for r in rates]
        print(f"  {label + ':':<28} median {statistics.median(rates):,.0f} images/s  {rounds}")


if __name__ == "__main__":
    main()
