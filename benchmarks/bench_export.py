"""ONNX export: parity, size, accuracy and speed of torch vs onnxruntime, FP32 vs INT8.

Usage: python benchmarks/bench_export.py [--epochs 15] [--train-size 60000]
       [--calibration-size 2000] [--threads N] [--rounds 15]

1. trains ``MNISTCNNClassifier(random_state=0)`` (the default recipe; fewer
   epochs or training images with the options) and exports it with
   :func:`sk_mnist.export.to_onnx`: float32, and INT8 statically quantized with
   ``--calibration-size`` training images drawn at random; an INT8 model
   quantized dynamically by onnxruntime (``quantize_dynamic``) is added for
   contrast;
2. checks parity on the 10,000 test images: FP32 ONNX predictions identical
   to the torch model's, max |difference of probabilities| at most 1e-4;
3. measures file sizes, test accuracies, latency at batch 1 and 256 and
   throughput of the torch model and the three ONNX models, each with the
   same number of threads; the runtimes take turns in every round, and
   medians over the rounds are reported, which evens out a shared machine's
   noise.

Prints markdown tables.
"""

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.quantization import quantize_dynamic

from sk_mnist import MNISTCNNClassifier, load_mnist
from sk_mnist.export import INPUT_NAME, ONNXClassifier, to_onnx


def torch_predictor(clf):
    """The torch model as it predicts: evaluation mode, no autograd, softmax."""
    network = copy.deepcopy(clf.module_).eval()

    def predict(X):
        with torch.inference_mode():
            return torch.softmax(network(torch.from_numpy(X)), dim=1).numpy()

    return predict


def onnx_predictor(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda X: session.run(None, {INPUT_NAME: X})[0]


def median_seconds(predict, X, calls):
    """Median wall time of one call, over ``calls`` calls."""
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(X)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def export_all(clf, calibration, folder):
    """Write the three ONNX models; return their paths and the export times."""
    start = time.perf_counter()
    fp32 = to_onnx(clf, folder / "fp32.onnx")
    fp32_seconds = time.perf_counter() - start
    start = time.perf_counter()
    int8 = to_onnx(clf, folder / "int8.onnx", quantize="int8", calibration_data=calibration)
    int8_seconds = time.perf_counter() - start
    dynamic = folder / "int8_dynamic.onnx"
    quantize_dynamic(fp32, dynamic)
    return fp32, int8, dynamic, fp32_seconds, int8_seconds


def print_parity(clf, fp32, X_test):
    reference = clf.predict_proba(X_test)
    proba = ONNXClassifier(fp32).fit().predict_proba(X_test)
    identical = np.array_equal(proba.argmax(axis=1), reference.argmax(axis=1))
    print("| parity of FP32 ONNX with the torch model (10,000 test images) | measured | target |")
    print("|---|---|---|")
    print(f"| identical predictions | {'yes' if identical else 'NO'} | yes |")
    print(f"| max abs difference of probabilities | {np.abs(proba - reference).max():.1e} | <= 1e-4 |\n")


def print_speed(clf, models, X_test, y_test, threads, rounds):
    """Accuracy and timings of the torch model and each ONNX model."""
    X_float = X_test.astype(np.float32)
    runtimes = {"torch FP32": (torch_predictor(clf), None)}
    runtimes.update({name: (onnx_predictor(path, threads), path) for name, path in models.items()})
    accuracy = {
        name: np.mean(clf.classes_[predict(X_float).argmax(axis=1)] == y_test)
        for name, (predict, _) in runtimes.items()
    }
    batch_1, batch_256 = X_float[:1], X_float[:256]
    timings = {name: {1: [], 256: []} for name in runtimes}
    for predict, _ in runtimes.values():  # warm-up
        predict(batch_256)
    for _ in range(rounds):  # the runtimes take turns, so that load changes hit all alike
        for name, (predict, _) in runtimes.items():
            timings[name][1].append(median_seconds(predict, batch_1, 50))
            timings[name][256].append(median_seconds(predict, batch_256, 5))

    fp32_size = models["onnxruntime FP32"].stat().st_size
    print(
        "| runtime | file | test accuracy | latency, batch 1 | latency, batch 256 | throughput, batch 256 |"
    )
    print("|---|---|---|---|---|---|")
    for name, (_, path) in runtimes.items():
        size = "-" if path is None else f"{path.stat().st_size / 1000:,.0f} kB"
        if path is not None and path.stat().st_size != fp32_size:
            size += f" ({fp32_size / path.stat().st_size:.1f}x smaller)"
        one, full = (statistics.median(timings[name][batch]) for batch in (1, 256))
        drop = accuracy[name] - accuracy["torch FP32"]
        print(
            f"| {name} | {size} | {accuracy[name]:.2%} ({drop * 100:+.2f}) | {one * 1e3:.3f} ms | "
            f"{full * 1e3:.2f} ms | {256 / full:,.0f} img/s |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="max_epochs of the recipe (default 15)")
    parser.add_argument("--train-size", type=int, default=60000)
    parser.add_argument("--calibration-size", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, y = load_mnist("train", return_X_y=True)
    X_test, y_test = load_mnist("test", return_X_y=True)
    X, y = X[: args.train_size], y[: args.train_size]
    start = time.perf_counter()
    clf = MNISTCNNClassifier(max_epochs=args.epochs, random_state=0).fit(X, y)
    fit_seconds = time.perf_counter() - start
    size = min(args.calibration_size, len(X))
    calibration = X[np.random.default_rng(0).choice(len(X), size, replace=False)]

    with tempfile.TemporaryDirectory() as folder:
        fp32, int8, dynamic, fp32_seconds, int8_seconds = export_all(clf, calibration, Path(folder))
        print(
            f"python {sys.version.split()[0]}, torch {torch.__version__}, onnxruntime {ort.__version__}, "
            f"{args.threads} threads, {os.cpu_count()} CPUs"
        )
        print(
            f"model: MNISTCNNClassifier(max_epochs={args.epochs}, random_state=0) on {len(X):,} training "
            f"images, {clf.n_iter_} epochs, fitted in {fit_seconds:.0f} s; export {fp32_seconds:.1f} s, "
            f"INT8 export with {len(calibration):,} calibration images {int8_seconds:.1f} s\n"
        )
        print_parity(clf, fp32, X_test)
        models = {
            "onnxruntime FP32": fp32,
            "onnxruntime INT8, static (QDQ)": int8,
            "onnxruntime INT8, dynamic": dynamic,
        }
        print_speed(clf, models, X_test, y_test, args.threads, args.rounds)


if __name__ == "__main__":
    main()
